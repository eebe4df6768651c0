// swift-tools-version:6.0
import PackageDescription

/// Sealbridge: end-to-end encryption for Matrix application services.
///
/// Dependencies point one way: C wrappers → crypto (no HTTP, no SQL) → store / homeserver client →
/// appservice + bridge → app assembly → executable. C modules are imported `internal` by their wrapper
/// and never appear in a public API.
let package = Package(
    name: "Sealbridge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sealbridge", targets: ["sealbridge"]),
        .executable(name: "sealbridge-bench", targets: ["sealbridge-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.21.0"),
    ],
    targets: [
        // MARK: C libraries (system, via pkg-config)
        .systemLibrary(
            name: "COlm", path: "Sources/COlm", pkgConfig: "olm",
            providers: [.apt(["libolm-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),

        // MARK: Wrappers
        .target(name: "Olm", dependencies: ["COlm", "Primitives"]),
        .target(name: "Primitives", dependencies: ["COpenSSL"]),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),

        // MARK: Matrix
        .target(name: "MatrixModels", dependencies: ["Olm"]),

        // MARK: Crypto engine (sans-I/O)
        .target(name: "MatrixCrypto", dependencies: ["Olm", "MatrixModels", "Primitives"]),

        .target(name: "Store", dependencies: ["MatrixCrypto", "MatrixModels", "Postgres"]),
        .target(
            name: "HomeserverClient",
            dependencies: [
                "MatrixModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: Appservice
        .target(
            name: "AppService",
            dependencies: [
                "MatrixModels", "Postgres", "Primitives", "Store",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "Bridge",
            dependencies: [
                "AppService", "MatrixCrypto", "MatrixModels", "Store", "HomeserverClient", "Postgres", "Primitives",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "BridgeAPI",
            dependencies: [
                "AppService", "Bridge", "HomeserverClient", "MatrixModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "SealbridgeApp",
            dependencies: [
                "AppService", "Bridge", "BridgeAPI", "SealbridgeConfig", "Postgres", "MatrixModels", "MatrixCrypto", "Store", "HomeserverClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // MARK: Configuration
        .target(name: "SealbridgeConfig", dependencies: [.product(name: "Yams", package: "Yams")]),

        // MARK: Executables
        .executableTarget(
            name: "sealbridge",
            dependencies: [
                "SealbridgeConfig", "SealbridgeApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .executableTarget(
            name: "sealbridge-bench",
            dependencies: [
                "Bridge", "AppService", "HomeserverClient", "MatrixCrypto", "MatrixModels", "Olm", "Postgres", "Primitives", "SealbridgeApp",
                "SealbridgeConfig", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: Tests
        .testTarget(name: "OlmTests", dependencies: ["Olm", "Primitives", "TestSupport"]),
        .testTarget(name: "PrimitivesTests", dependencies: ["Primitives"]),
        .testTarget(name: "MatrixModelsTests", dependencies: ["MatrixModels", "Olm", "TransactionCorpus"]),
        .target(name: "TestSupport", dependencies: ["Postgres"], path: "Tests/TestSupport"),
        .target(name: "TransactionCorpus", dependencies: ["MatrixModels"], path: "Tests/TransactionCorpus"),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"]),
        .testTarget(name: "SealbridgeConfigTests", dependencies: ["SealbridgeConfig"]),
        .testTarget(name: "MatrixCryptoTests", dependencies: ["MatrixCrypto", "Olm", "MatrixModels", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "MatrixCrypto", "MatrixModels", "Olm", "Postgres", "TestSupport"]),
        .testTarget(
            name: "HomeserverClientTests",
            dependencies: [
                "HomeserverClient", "MatrixCrypto", "MatrixModels", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "BridgeTests",
            dependencies: ["Bridge", "AppService", "HomeserverClient", .product(name: "Logging", package: "swift-log"), "MatrixCrypto", "MatrixModels", "Olm", "Postgres", "Store", "TestSupport"]),
        .testTarget(
            name: "AppServiceTests",
            dependencies: [
                "AppService", "SealbridgeApp", "SealbridgeConfig", "Postgres", "MatrixModels", "MatrixCrypto", "Primitives", "TestSupport",
                "TransactionCorpus", "Bridge", "Store", "HomeserverClient",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)

// MARK: Fuzzing
// The libFuzzer target exists only when SEALBRIDGE_FUZZ=1 is set as SwiftPM reads this file, so normal
// builds never compile it. Build it with `-sanitize=fuzzer,address` and run it with scripts/fuzz.
if Context.environment["SEALBRIDGE_FUZZ"] == "1" {
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .executableTarget(name: "sealbridge-fuzz", dependencies: ["CLibFuzzer", "MatrixModels", "MatrixCrypto", "Olm", "Primitives"]),
    ]
    package.products.append(.executable(name: "sealbridge-fuzz", targets: ["sealbridge-fuzz"]))
}
