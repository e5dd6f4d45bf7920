// The libFuzzer driver for Themis's fuzz targets (built only with THEMIS_FUZZ=1; see scripts/fuzz.sh).
//
// One binary, several targets: THEMIS_FUZZ_TARGET names the one to run (`frame`, `message`,
// `handshake`, `session`, `core`; Fuzz/ThemisFuzzTargets). `themis-fuzz --write-seeds DIR` writes the
// seed corpus instead (Fuzz/corpus/TARGET/ in the repository is its output).
//
// A finding is a trap (a failed precondition, an out-of-range index, an overflow) or a failed property
// (`FuzzFailure`, turned into a trap here): either stops the process and libFuzzer saves the input.
//
// The only unsafe pointers in the project are here, at the C boundary libFuzzer imposes: the input is
// copied into an array at once and nothing else touches the pointer.
#if canImport(Glibc)
import Glibc
#endif
import ThemisFuzzTargets

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "--write-seeds" {
    do {
        try Seeds.write(to: arguments[2])
        exit(0)
    } catch {
        print("cannot write the seed corpus: \(error)")
        exit(1)
    }
}

guard FuzzTarget.selected != nil else {
    print("set THEMIS_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    exit(2)
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv) { start, count in
    guard let start, count > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: start, count: count))
    do {
        try FuzzTarget.selected?.run(input)
    } catch {
        fatalError("fuzz property failed: \(error)")
    }
    return 0
})
