extension AppserviceTransaction {
    /// The field spellings, stable name first.
    enum FieldNames {
        static let events = ["events"]
        static let ephemeral = ["ephemeral", "de.sorunome.msc2409.ephemeral"]
        static let toDevice = ["to_device", "de.sorunome.msc2409.to_device"]
        static let deviceLists = ["device_lists", "org.matrix.msc3202.device_lists"]
        static let oneTimeKeyCounts = [
            "device_one_time_keys_count", "device_one_time_key_counts",
            "org.matrix.msc3202.device_one_time_keys_count", "org.matrix.msc3202.device_one_time_key_counts",
        ]
        static let unusedFallbackKeyTypes = [
            "device_unused_fallback_key_types", "org.matrix.msc3202.device_unused_fallback_key_types",
        ]
    }

    /// Where the scanner looks: down to each event, to-device message, device-list entry, and each
    /// device's key counts and fallback key types.
    static let scanPlan: [String: ScanPlan] = {
        var plan: [String: ScanPlan] = [:]
        for name in FieldNames.events + FieldNames.ephemeral + FieldNames.toDevice { plan[name] = .elements(.entry) }
        for name in FieldNames.deviceLists {
            plan[name] = .fields(["changed": .elements(.entry), "left": .elements(.entry), "removed": .elements(.entry)])
        }
        for name in FieldNames.oneTimeKeyCounts + FieldNames.unusedFallbackKeyTypes { plan[name] = .members(.members(.entry)) }
        return plan
    }()

    /// Decodes a transaction body, entry by entry.
    ///
    /// The homeserver retries a refused transaction forever, and its retry has lost the to-device
    /// messages (room keys), device-list changes and key counts of the first attempt. So the body is
    /// refused only when it is not JSON or not an object; everything inside is judged entry by entry.
    /// One scan finds the entries (see ``TransactionScanner``), then each event, to-device message,
    /// device-list entry and per-device value is parsed on its own with the strict parser. One that fails
    /// (a syntax error, nesting deeper than ``JSONValue/maximumDepth``, a lone surrogate, invalid UTF-8, a
    /// duplicate key, the wrong shape, an id that does not parse, a count out of range) is left out and
    /// counted in ``skipped``; to-device messages left out are also counted in ``droppedToDevice``.
    ///
    /// Each section is read from its first spelling that is present and not `null` (stable first); a
    /// spelling of the wrong type is counted and the next one read. A section named twice is read from its
    /// first occurrence. Unknown fields are ignored, unread.
    /// - Throws: ``TransactionDecodingError``: `notJSON` if the body is not JSON (truncated, unbalanced,
    ///   malformed top-level members), `badJSON` if it is JSON but not an object.
    public static func decode(_ body: some Collection<UInt8>) throws(TransactionDecodingError) -> AppserviceTransaction {
        let result = body.withContiguousStorageIfAvailable { decode(buffer: $0) }
            ?? Array(body).withUnsafeBufferPointer { decode(buffer: $0) }
        return try result.get()
    }

    static func decode(buffer: UnsafeBufferPointer<UInt8>) -> Result<AppserviceTransaction, TransactionDecodingError> {
        var scanner = TransactionScanner(buffer)
        let members: [ScannedMember]
        switch Result(catching: { () throws(TransactionScanner.Malformed) -> TransactionScanner.Body in try scanner.scanBody(scanPlan) }) {
        case .success(.object(let found)): members = found
        case .success(.notAnObject):
            return .failure(TransactionDecodingError(kind: .badJSON, message: "transaction body must be a JSON object"))
        case .failure(let malformed):
            return .failure(TransactionDecodingError(kind: .notJSON, message: "\(malformed.message) at byte \(malformed.offset)"))
        }
        var entries = TransactionEntries(bytes: buffer)
        let sections = entries.sections(members)
        var transaction = AppserviceTransaction()
        transaction.events = entries.objects(entries.section(FieldNames.events, in: sections))
        transaction.ephemeral = entries.objects(entries.section(FieldNames.ephemeral, in: sections))
        (transaction.toDevice, transaction.droppedToDevice) = entries.toDeviceEvents(entries.section(FieldNames.toDevice, in: sections))
        if let lists = entries.section(FieldNames.deviceLists, in: sections) {
            transaction.deviceLists = entries.deviceLists(lists)
        }
        if let counts = entries.section(FieldNames.oneTimeKeyCounts, in: sections) {
            transaction.oneTimeKeyCounts = entries.perDevice(counts, invalid: .badKeyCount, TransactionEntries.keyCounts)
        }
        if let types = entries.section(FieldNames.unusedFallbackKeyTypes, in: sections) {
            transaction.unusedFallbackKeyTypes = entries.perDevice(types, invalid: .badFallbackTypes, TransactionEntries.fallbackTypes)
        }
        transaction.skipped = entries.skipped
        return .success(transaction)
    }
}
