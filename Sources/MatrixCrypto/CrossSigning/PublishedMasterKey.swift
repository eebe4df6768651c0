import MatrixModels

/// Reads a user's cross-signing master key from a `/keys/query` answer (`master_keys`).
///
/// Used to tell whether a local user already has an identity on the homeserver, and which: the one
/// secret storage must restore, or the one a new upload would replace.
public enum PublishedMasterKey {
    /// The user's master public key (unpadded base64), or nil when the answer has none for them.
    ///
    /// - Throws: `invalidCrossSigning` when there is a master key object but it is not one: another
    ///   user's, without `master` usage, or not exactly one `ed25519:<key>` entry naming itself. A
    ///   key that cannot be read is not the same as no key: a caller deciding whether to make a new
    ///   identity must not take it for absence.
    public static func masterKey(of userID: UserID, in response: JSONValue) throws(CryptoError) -> String? {
        guard let object = response["master_keys"]?[userID.rawValue] else { return nil }
        func refuse(_ why: String) -> CryptoError {
            CryptoError(code: .invalidCrossSigning, message: "the homeserver's master key for \(userID) \(why)")
        }
        guard object["user_id"]?.stringValue == userID.rawValue else { throw refuse("names another user") }
        guard object["usage"]?.arrayValue?.contains(.string("master")) == true else { throw refuse("has no master usage") }
        guard let keys = object["keys"]?.objectValue, keys.count == 1, let (id, value) = keys.first,
            let key = value.stringValue, id == "ed25519:\(key)", !key.isEmpty
        else { throw refuse("does not hold exactly one ed25519 key") }
        return key
    }
}
