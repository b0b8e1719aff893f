/// Speaker-grouped k-fold split: no speaker in two folds, folds balanced in clip count, the same for
/// the same seed. Fold k's clips are the validation set of run k; the other folds train it.
public struct SpeakerFolds: Sendable {
    /// Speakers of each fold, sorted.
    public let speakers: [[String]]
    /// Clip indices (into the dataset's clips) of each fold, ascending.
    public let clipIndices: [[Int]]
    /// Clips of the dataset's training-only speakers: in every fold's training set.
    public let trainingOnlyIndices: [Int]

    /// Shuffles the speakers with `seed`, then gives each speaker, largest first, to the fold with the
    /// fewest clips so far; the shuffle only decides among speakers of equal size.
    public init(dataset: Dataset, folds: Int, seed: UInt64) throws {
        let speakers = dataset.speakers.filter { !dataset.trainingOnlySpeakers.contains($0) }
        guard folds >= 2 else {
            throw DatasetError(path: dataset.root, problem: "folds must be at least 2 (got \(folds))")
        }
        guard folds <= speakers.count else {
            throw DatasetError(path: dataset.root, problem:
                "\(folds) folds need at least \(folds) speakers, the dataset has \(speakers.count)")
        }
        var clipsOf: [String: [Int]] = [:]
        var trainingOnly: [Int] = []
        for (i, clip) in dataset.clips.enumerated() {
            if dataset.trainingOnlySpeakers.contains(clip.speaker) { trainingOnly.append(i) } else { clipsOf[clip.speaker, default: []].append(i) }
        }
        trainingOnlyIndices = trainingOnly
        var rng = SplitMix64(seed: seed)
        var shuffled = speakers
        rng.shuffle(&shuffled)
        let order = shuffled.indices.sorted { a, b in
            let (countA, countB) = (clipsOf[shuffled[a]]!.count, clipsOf[shuffled[b]]!.count)
            return countA != countB ? countA > countB : a < b
        }.map { shuffled[$0] }
        var foldSpeakers = [[String]](repeating: [], count: folds)
        var foldClips = [[Int]](repeating: [], count: folds)
        for speaker in order {
            let target = foldClips.indices.min { (foldClips[$0].count, $0) < (foldClips[$1].count, $1) }!
            foldSpeakers[target].append(speaker)
            foldClips[target] += clipsOf[speaker]!
        }
        self.speakers = foldSpeakers.map { $0.sorted() }
        self.clipIndices = foldClips.map { $0.sorted() }
    }

    public var count: Int { speakers.count }

    /// Clip indices of every fold but `fold`.
    public func trainingIndices(excluding fold: Int) -> [Int] {
        (clipIndices.indices.filter { $0 != fold }.flatMap { clipIndices[$0] } + trainingOnlyIndices).sorted()
    }
}
