import Foundation

/// Runs one of the independent implementations in `Tests/Interop/` (a Python script) once per call,
/// a JSON request on stdin and a JSON object back: vodozemac for Olm/Megolm, mautrix-python for
/// secret storage.
public struct PythonPeer: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    let python: URL
    let script: URL
    let name: String

    /// - Parameters:
    ///   - script: The file name in `Tests/Interop/`.
    ///   - name: What the peer is, for errors ("vodozemac", "mautrix").
    public init(script: String, name: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        self.script = root.appendingPathComponent("Tests/Interop/\(script)")
        self.name = name
        let candidates: [String?] = [
            ProcessInfo.processInfo.environment["SEALBRIDGE_INTEROP_PYTHON"], root.appendingPathComponent(".venv/bin/python3").path,
        ]
        guard let path = candidates.compactMap({ $0 }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "no Python with \(name): run scripts/test (it creates .venv) or set SEALBRIDGE_INTEROP_PYTHON")
        }
        python = URL(fileURLWithPath: path)
    }

    public func call(_ request: [String: Any]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = python
        process.arguments = [script.path]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: request))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(name) peer exited \(process.terminationStatus): \(String(decoding: stderr, as: UTF8.self))")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "\(name) peer printed no JSON object")
        }
        return object
    }
}
