// swift-tools-version: 6.2
// Themis for Swift: a Byzantine-fault-tolerant state-machine-replication framework.
// The layout follows DESIGN.md section 2: dependencies point down the target list only.
import PackageDescription

/// Settings for our own targets only: NIO's `@preconcurrency` imports would otherwise let real
/// isolation mistakes pass as warnings.
let strictSettings: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// `themis-replica` on Linux: one static executable (no shared Swift runtime, Foundation, libc or libstdc++
/// to map and relocate: static linking alone took the peak RSS at 40 clients from 22-24 to 19 MiB), linked by
/// lld with the functions a replica executes packed together at the front of its code
/// (`hot-functions.order`, written by scripts/profile-hot-functions.sh): the kernel maps file pages around
/// each fault (fault-around), so scattered code costs far more resident memory than it weighs (19 -> 11-12 MiB
/// with the synchronous main). README "Memory".
/// FoundationEssentials' own libraries are named because a static executable does not pull them in itself.
/// `THEMIS_DYNAMIC_REPLICA=1` links it like the other executables (scripts/sanitize.sh: the sanitizers'
/// runtimes need dynamic linking). An executable's link flags do not reach packages that depend on Themis.
let replicaLinkerSettings: [LinkerSetting] =
    Context.environment["THEMIS_DYNAMIC_REPLICA"] != nil ? [] : [
        .unsafeFlags([
            "-static-executable", "-lFoundationEssentials", "-l_FoundationCollections", "-l_FoundationCShims",
            "-use-ld=lld",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/themis-replica/hot-functions.order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ], .when(platforms: [.linux])),
    ]

let package = Package(
    name: "Themis",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ThemisCore", targets: ["ThemisCore"]),
        .library(name: "ThemisWire", targets: ["ThemisWire"]),
        .library(name: "ThemisCrypto", targets: ["ThemisCrypto"]),
        .library(name: "ThemisDriver", targets: ["ThemisDriver"]),
        .library(name: "ThemisPBFT", targets: ["ThemisPBFT"]),
        .library(name: "ThemisHybster", targets: ["ThemisHybster"]),
        .library(name: "ThemisTransport", targets: ["ThemisTransport"]),
        .library(name: "ThemisClientCore", targets: ["ThemisClientCore"]),
        .library(name: "ThemisClient", targets: ["ThemisClient"]),
        .library(name: "ThemisReplica", targets: ["ThemisReplica"]),
        .library(name: "ThemisApps", targets: ["ThemisApps"]),
        .library(name: "ThemisStorage", targets: ["ThemisStorage"]),
        .library(name: "ThemisTLS", targets: ["ThemisTLS"]),
        .executable(name: "themis", targets: ["themis"]),
        .executable(name: "themis-replica", targets: ["themis-replica"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2", traits: []),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(
            name: "ThemisCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisWire",
            dependencies: ["ThemisCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisCrypto",
            dependencies: [
                "ThemisCore", "ThemisWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The one ingress and the one driver, generic over the protocol (no NIOPosix: the simulator runs them).
        .target(
            name: "ThemisDriver",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Building blocks protocol cores share (client table, request queue, checkpoint state, size model).
        .target(name: "ThemisProtocolKit", dependencies: ["ThemisCore"], swiftSettings: strictSettings),
        // The PBFT plug-in: its pure core, messages, codec, message bounds and verifier.
        .target(
            name: "ThemisPBFT",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisProtocolKit",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The Hybster plug-in: its pure core (n = 2f + 1, trusted counters, pillars), messages, codec and verifier.
        .target(
            name: "ThemisHybster",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisProtocolKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "ThemisApps", dependencies: ["ThemisCore"], swiftSettings: strictSettings),
        // Durable mode's files: the write-ahead log in CRC-framed segments and the checkpoint snapshots.
        .target(name: "ThemisStorage", swiftSettings: strictSettings),
        .target(
            name: "ThemisTransport",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Optional TLS under the authenticated handshake (`"tls"` in cluster.json): contexts from PEM, handlers.
        .target(
            name: "ThemisTLS",
            dependencies: [
                "ThemisCrypto", "ThemisTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "ThemisClientCore", dependencies: ["ThemisCore"], swiftSettings: strictSettings),
        // Generic over the protocol and instantiated in another module (ThemisPBFTSimulation): cross-module
        // optimization lets the compiler specialize the world for PBFT there (unspecialized, the simulator ran
        // 45 % slower). An unsafe flag: the simulator (a development tool behind `themis simulate`) is therefore
        // in no library product, so packages that depend on Themis never build it.
        .target(
            name: "ThemisSimulator",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisApps", "ThemisClientCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),
        // PBFT in the simulator: its adversary (what Byzantine replicas do with PBFT messages) and core hooks.
        .target(
            name: "ThemisPBFTSimulation",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisPBFT", "ThemisSimulator",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Hybster in the simulator: its adversary (Byzantine replicas with their own trusted subsystems).
        .target(
            name: "ThemisHybsterSimulation",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisHybster", "ThemisProtocolKit", "ThemisSimulator",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisClient",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisTransport", "ThemisClientCore", "ThemisTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisReplica",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisPBFT", "ThemisHybster", "ThemisApps", "ThemisTransport",
                "ThemisStorage", "ThemisTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisReplicaCommand",
            dependencies: [
                "ThemisCore", "ThemisCrypto", "ThemisApps", "ThemisReplica", "ThemisTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "themis-replica",
            dependencies: ["ThemisReplicaCommand"],
            exclude: ["hot-functions.order"],
            swiftSettings: strictSettings,
            linkerSettings: replicaLinkerSettings
        ),
        .executableTarget(
            name: "themis",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisPBFT", "ThemisApps",
                "ThemisClient", "ThemisReplica", "ThemisReplicaCommand", "ThemisSimulator", "ThemisPBFTSimulation",
                "ThemisHybster", "ThemisHybsterSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ThemisFuzzTargets",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisPBFT", "ThemisHybster", "ThemisPBFTTesting", "ThemisTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Fuzz/ThemisFuzzTargets",
            swiftSettings: strictSettings
        ),
        // The protocol-neutral transcript harness (format, comparison, rewrite); each protocol's tests add a runner.
        .target(name: "ThemisTestSupport", path: "Tests/ThemisTestSupport", swiftSettings: strictSettings),
        // The one in-memory PBFT test cluster, shared by ThemisPBFTTests and the fuzz seed generator.
        .target(name: "ThemisPBFTTesting", dependencies: ["ThemisCore", "ThemisPBFT"], path: "Tests/ThemisPBFTTesting", swiftSettings: strictSettings),
        .testTarget(name: "ThemisCoreTests", dependencies: ["ThemisCore"]),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["ThemisFuzzTargets"]),
        .testTarget(name: "ThemisWireTests", dependencies: ["ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisPBFT", "ThemisSimulator", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "ThemisCryptoTests", dependencies: ["ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisPBFT"]),
        .testTarget(name: "ThemisPBFTTests", dependencies: ["ThemisCore", "ThemisWire", "ThemisPBFT", "ThemisProtocolKit", "ThemisPBFTTesting", "ThemisTestSupport"], exclude: ["testdata"]),
        .testTarget(name: "ThemisHybsterTests", dependencies: [
            "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisHybster",
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "ThemisAppsTests", dependencies: ["ThemisCore", "ThemisApps"]),
        .testTarget(name: "ThemisStorageTests", dependencies: ["ThemisStorage"]),
        .testTarget(name: "ThemisClientTests", dependencies: ["ThemisCore", "ThemisClientCore"]),
        .testTarget(name: "ThemisSimulatorTests", dependencies: ["ThemisCore", "ThemisCrypto", "ThemisDriver", "ThemisPBFT", "ThemisSimulator", "ThemisPBFTSimulation", "ThemisHybster", "ThemisHybsterSimulation"]),
        .testTarget(
            name: "ThemisTransportTests",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "themis", "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisPBFT", "ThemisClient", "ThemisApps", "ThemisTransport", "ThemisReplica", "ThemisTLS",
                "ThemisStorage", "ThemisReplicaCommand",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)

// Micro benchmarks (Benchmarks/ThemisBenchmarks, ordo-one's package-benchmark, whose repository is now
// named `benchmark`): only with THEMIS_BENCHMARKS=1, so a plain `swift build` / `swift test` neither
// resolves nor builds them. Only the MallocInterposer trait: malloc counts without jemalloc, and no
// swift-runtime-interposer dependency (RuntimeInterposer trait off). See Benchmarks/README.md.
if Context.environment["THEMIS_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "ThemisBenchmarks",
            dependencies: [
                "ThemisCore", "ThemisWire", "ThemisCrypto", "ThemisDriver", "ThemisPBFT",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ThemisBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

// The libFuzzer driver (Fuzz/ThemisFuzz): only with THEMIS_FUZZ=1, built by scripts/fuzz.sh with
// `-sanitize=fuzzer` into its own build directory. Its targets (Fuzz/ThemisFuzzTargets) are always
// built: FuzzCorpusTests replays the seed corpus through them. Neither is part of a product.
if Context.environment["THEMIS_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "themis-fuzz",
            dependencies: ["ThemisFuzzTargets"],
            path: "Fuzz/ThemisFuzz",
            swiftSettings: strictSettings
        )
    )
}
