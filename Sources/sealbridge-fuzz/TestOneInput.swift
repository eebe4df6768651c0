/// What libFuzzer runs for each input: it is tried as a transaction body, as a decrypted payload and as
/// a Megolm ciphertext.
///
/// A crash, a sanitizer report or a failed invariant is a finding; a thrown error is an expected refusal
/// and is dropped. main.swift hands it to libFuzzer's driver; the C name is there because the fuzzer
/// runtime's own (unused) `main` refers to it and must link.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    fuzzTransactionBody(input)
    fuzzDecryptedPayload(input)
    fuzzMegolmCiphertext(input)
    return 0
}
