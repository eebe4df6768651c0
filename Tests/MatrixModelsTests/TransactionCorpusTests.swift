import MatrixModels
import Testing
import TransactionCorpus

@Suite("Transaction corpus: decoding")
struct TransactionCorpusTests {
    @Test("every corpus case decodes (or is refused) as its expect file says", arguments: try TransactionCorpus.cases())
    func corpusCase(_ corpusCase: TransactionCorpus.Case) {
        let expected = corpusCase.expected
        do {
            let transaction = try AppserviceTransaction.decode(corpusCase.body)
            #expect(expected.status == 200, "decoded, but expected \(expected.errcode ?? "")")
            if let counts = expected.counts {
                #expect(TransactionCorpus.Counts(transaction) == counts)
            }
            #expect(transaction.skipped.total == (expected.counts?.skipped.values.reduce(0, +) ?? 0))
        } catch {
            #expect(expected.status == 400, "refused: \(error)")
            #expect(expected.errcode == (error.kind == .notJSON ? "M_NOT_JSON" : "M_BAD_JSON"), "refused: \(error)")
        }
    }
}
