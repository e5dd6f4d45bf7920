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

// `themis-fuzz --replay ROUNDS FILE...`: runs every file ROUNDS times through THEMIS_FUZZ_TARGET without
// libFuzzer and prints the resident set before and after (to tell a leak of the targets from memory
// libFuzzer keeps).
func readFile(_ path: String) -> [UInt8]? {
    guard let handle = fopen(path, "rb") else { return nil }
    defer { fclose(handle) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, handle)
        bytes += chunk[0..<count]
        if count < chunk.count { return bytes }
    }
}

func residentKiB() -> Int {
    guard let text = readFile("/proc/self/statm").map({ String(decoding: $0, as: UTF8.self) }) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4 : 0
}

if arguments.count >= 4, arguments[1] == "--replay", let target = FuzzTarget.selected, let rounds = Int(arguments[2]) {
    let inputs = arguments.dropFirst(3).compactMap(readFile)
    for input in inputs { try? target.run(input) }
    let before = residentKiB()
    for _ in 0..<rounds { for input in inputs { try? target.run(input) } }
    print("\(target.rawValue): \(rounds * inputs.count) runs of \(inputs.count) inputs; resident \(before) KiB before, \(residentKiB()) KiB after")
    exit(0)
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
