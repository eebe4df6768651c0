/// The version printed by `sealbridge --version` and reported by the management room's `status`.
enum SealbridgeVersion {
    static let current = "0.1.0-dev"
}
