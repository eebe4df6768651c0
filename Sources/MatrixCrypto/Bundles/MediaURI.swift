import MatrixModels

/// An `mxc://server/media-id` the media repository serves.
public struct MediaURI: Sendable, Hashable, CustomStringConvertible {
    public var server: String
    public var mediaID: String

    /// Reads an `mxc://` URI: a server name of host characters (and a port), a media id of
    /// `[A-Za-z0-9_-]` (the spec's), each at most 255 bytes.
    public init(_ text: String) throws(DecryptionFailure) {
        guard text.hasPrefix("mxc://") else { throw .malformed("file.url is not an mxc:// URI") }
        let parts = text.dropFirst(6).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformed("file.url is not mxc://server/media-id") }
        let server = String(parts[0]), mediaID = String(parts[1])
        let serverCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
        let idCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        guard !server.isEmpty, server.utf8.count <= 255, server.allSatisfy({ serverCharacters.contains($0) }),
            !mediaID.isEmpty, mediaID.utf8.count <= 255, mediaID.allSatisfy({ idCharacters.contains($0) })
        else { throw .malformed("file.url has an invalid server name or media id") }
        self.server = server
        self.mediaID = mediaID
    }

    public var description: String { "mxc://\(server)/\(mediaID)" }
}
