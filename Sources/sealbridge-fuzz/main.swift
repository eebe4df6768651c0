import CLibFuzzer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Our own `main`, handing control to libFuzzer's driver: SwiftPM links every executable with its module's
// entry point as `main`, so libFuzzer's `main` (which would call LLVMFuzzerTestOneInput itself) is never used.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) })
