/// The speaker-disjoint splits the AudioMNIST authors published for digit classification
/// (github.com/soerenab/AudioMNIST, audiomnist/train/splits.py, "digit"): five splits of the 60 speakers
/// into 36 training, 12 validation and 12 test speakers, each speaker tested in exactly one split. Results
/// on them compare with the literature (Becker et al., "Interpreting and explaining deep neural networks for
/// classification of audio signals", 2018).
public enum AudioMNISTSplits {
    public struct Split: Sendable, Equatable {
        /// Speaker folder names, "01"…"60".
        public var validation: [String]
        public var test: [String]
        /// The other 36 speakers.
        public var training: [String] {
            let held = Set(validation + test)
            return speakers.filter { !held.contains($0) }
        }
    }

    /// AudioMNIST's 60 speaker folders.
    public static let speakers = (1...60).map(name)

    static func name(_ speaker: Int) -> String { speaker < 10 ? "0\(speaker)" : "\(speaker)" }

    /// The five groups of 12 speakers; split k validates on group k and tests on group k + 1 (mod 5), as the
    /// published lists do.
    static let groups: [[Int]] = [
        [12, 47, 59, 15, 27, 41, 4, 11, 21, 31, 44, 50],
        [26, 52, 60, 18, 32, 42, 5, 13, 22, 33, 45, 51],
        [28, 56, 7, 19, 35, 1, 6, 16, 23, 34, 46, 53],
        [36, 57, 9, 24, 37, 2, 8, 17, 29, 39, 48, 54],
        [43, 58, 14, 25, 38, 3, 10, 20, 30, 40, 49, 55],
    ]

    public static let splits: [Split] = (0..<5).map { k in
        Split(validation: groups[k].sorted().map(name), test: groups[(k + 1) % 5].sorted().map(name))
    }
}
