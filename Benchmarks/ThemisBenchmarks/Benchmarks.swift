// Micro benchmarks for Themis (package-benchmark). Run with:
//   THEMIS_BENCHMARKS=1 swift package --scratch-path .build-bench benchmark
// See Benchmarks/README.md for what each benchmark measures.
import Benchmark

/// The entry point the benchmark plugin's generated `main` calls: registers every suite.
let benchmarks: @Sendable () -> Void = {
    registerCodecBenchmarks()
    registerAuthenticatorBenchmarks()
    registerProtocolBenchmarks()
}

/// The metrics every Themis benchmark reports.
let themisMetrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

/// A configuration with `inner` operations per measured iteration (`benchmark.scaledIterations`); every
/// reported figure is per operation (the plugin divides by the scaling factor, marked `*` in the output).
func configuration(
    scaling inner: BenchmarkScalingFactor, seconds: Int = 2, maxIterations: Int = 100_000
) -> Benchmark.Configuration {
    Benchmark.Configuration(
        metrics: themisMetrics,
        warmupIterations: 3,
        scalingFactor: inner,
        maxDuration: .seconds(seconds),
        maxIterations: maxIterations
    )
}
