// swift-tools-version:6.1
import PackageDescription

/// One list of strict settings, applied to every target (house rule 11).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "steward",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "steward", targets: ["StewardCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
    ],
    targets: [
        .target(name: "StewardCore", swiftSettings: strict),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "StewardServices",
            dependencies: [
                "StewardCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardCrypto",
            dependencies: [
                "StewardCore",
                "StewardServices",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardPolicy",
            dependencies: ["StewardCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "SQLiteDriver",
            dependencies: ["StewardCore", "CSQLite"],
            swiftSettings: strict
        ),
        .target(
            name: "StewardSQLite",
            dependencies: [
                "StewardCore",
                "StewardServices",
                "SQLiteDriver",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PostgresDriver",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardPostgres",
            dependencies: [
                "StewardCore",
                "StewardServices",
                "PostgresDriver",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardInput",
            dependencies: [
                "StewardCore",
                "StewardServices",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardConnectors",
            dependencies: [
                "StewardCore",
                "SQLiteDriver",
                "PostgresDriver",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardExport",
            dependencies: ["StewardCore", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: strict
        ),
        .target(
            name: "StewardHTTP",
            dependencies: [
                "StewardCore",
                "StewardServices",
                "StewardInput",
                "StewardConnectors",
                "StewardExport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "StewardCLI",
            dependencies: [
                "StewardCore", "StewardServices", "StewardCrypto", "StewardPolicy",
                "StewardSQLite", "StewardPostgres", "PostgresDriver", "StewardHTTP", "StewardInput",
                "StewardConnectors", "StewardExport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StewardTesting",
            dependencies: [
                "StewardCore", "StewardServices", "StewardCrypto", "StewardPolicy",
                "StewardSQLite", "StewardPostgres", "PostgresDriver", "StewardHTTP", "StewardConnectors",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StewardCoreTests",
            dependencies: ["StewardCore", "StewardPolicy", "StewardCrypto", "StewardServices"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StewardStoreTests",
            dependencies: [
                "StewardTesting", "StewardCore", "StewardServices", "StewardSQLite", "StewardPolicy", "StewardCrypto",
                "StewardPostgres", "PostgresDriver", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StewardHTTPTests",
            dependencies: [
                "StewardTesting", "StewardCore", "StewardServices", "StewardHTTP", "StewardInput", "StewardCrypto",
                "StewardSQLite", "StewardConnectors", "SQLiteDriver", "PostgresDriver", "StewardPolicy",
                "StewardExport",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
