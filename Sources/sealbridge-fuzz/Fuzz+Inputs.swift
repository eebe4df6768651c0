import MatrixModels

/// Decodes `input` as a transaction body, then hands every event, ephemeral event and to-device content
/// to the parsers that read them further down the pipeline.
func fuzzTransactionBody(_ input: UnsafeBufferPointer<UInt8>) {
    guard let transaction = try? AppserviceTransaction.decode(input) else { return }
    precondition(transaction.droppedToDevice <= transaction.skipped.total, "a dropped to-device message was not counted as skipped")
    for event in transaction.events {
        let sender = event["sender"]?.stringValue.flatMap { try? UserID($0) }
        exercise(event, sender: sender)
        exercise(event["content"] ?? .null, sender: sender)
    }
    for event in transaction.ephemeral { exercise(event, sender: nil) }
    for message in transaction.toDevice { exercise(message.content, sender: message.sender) }
}

/// Treats `input` as the plaintext of a decrypted Olm or Megolm message, which its sender controls.
func fuzzDecryptedPayload(_ input: UnsafeBufferPointer<UInt8>) {
    guard let payload = try? JSONValue.parse(input) else { return }
    let sender = payload["sender"]?.stringValue.flatMap { try? UserID($0) }
    exercise(payload, sender: sender)
    exercise(payload["content"] ?? .null, sender: sender)
}
