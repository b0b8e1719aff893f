import Foundation

/// One labelled recording.
public struct Clip: Hashable, Sendable {
    /// Absolute or working-directory-relative path of the audio file.
    public var path: String
    /// The spoken digit, 0–9.
    public var label: Int
    /// Who spoke it; folds never split a speaker.
    public var speaker: String

    public init(path: String, label: Int, speaker: String) {
        self.path = path
        self.label = label
        self.speaker = speaker
    }
}

/// The on-disk layouts `--data` may point at.
public enum DatasetLayout: String, Sendable {
    /// `ROOT/NN/{digit}_{NN}_{index}.wav`, speaker = NN (AudioMNIST's `data/` folder).
    case audioMNIST = "AudioMNIST"
    /// Flat `ROOT/{digit}_{speaker}_{index}.wav` (Free Spoken Digit Dataset's `recordings/`).
    case fsdd = "FSDD"
    /// A CSV with columns `audio,label[,speaker]`, audio paths relative to a data folder.
    case csv = "CSV"
    /// Every audio file under a folder, at any depth, unlabelled: noise recordings
    /// (`augmentation.noise_folder`), each clip's label 0 and speaker its folder.
    case recordings = "Recordings"
}

/// A file the scan or the feature cache passed over, with the reason; listed at the end of a run.
public struct SkippedFile: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A one-line error naming the file and the problem.
public struct DatasetError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)".escapingControlCharacters }
}

extension String {
    /// Control characters (line breaks, tabs, NUL …) written as escapes, so an error that quotes a file's
    /// bytes stays one line.
    public var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
        return unicodeScalars.map { scalar in
            switch scalar {
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\t": return "\\t"
            case _ where scalar.properties.generalCategory == .control: return String(format: "\\u{%X}", scalar.value)
            default: return String(scalar)
            }
        }.joined()
    }
}

/// The clips of a dataset, in a deterministic order (sorted by path).
public struct Dataset: Sendable {
    public var root: String
    public var layout: DatasetLayout
    public var clips: [Clip]
    /// Files that looked like part of the dataset but could not be used.
    public var skipped: [SkippedFile]
    /// Speakers whose clips only ever train (`dataset.extra_training_data`): in no fold, in every run's
    /// training set.
    public var trainingOnlySpeakers: Set<String> = []

    public init(root: String, layout: DatasetLayout, clips: [Clip], skipped: [SkippedFile] = []) {
        self.root = root
        self.layout = layout
        self.clips = clips.sorted { $0.path < $1.path }
        self.skipped = skipped
    }

    /// What the dataset is called: its folder's name, or its CSV's without the extension.
    public var name: String {
        let last = (root as NSString).lastPathComponent
        return layout == .csv ? (last as NSString).deletingPathExtension : last
    }

    /// Clips whose file is missing or is not a regular file: listed by `data` before the cache build
    /// skips them.
    public var unreadableClips: [SkippedFile] {
        clips.compactMap { clip in
            var info = stat()
            guard stat(clip.path, &info) == 0 else { return SkippedFile(path: clip.path, reason: "no such file") }
            return (info.st_mode & S_IFMT) == S_IFREG ? nil : SkippedFile(path: clip.path, reason: "not a regular file")
        }
    }

    /// Speakers in sorted order.
    public var speakers: [String] { Array(Set(clips.map(\.speaker))).sorted() }

    /// This dataset with `extra`'s clips added as training-only speakers, named `extra/SPEAKER` so they
    /// cannot merge with one of ours. The root names both, so the pair has a feature cache of its own.
    public func addingTrainingOnly(_ extra: Dataset) -> Dataset {
        let renamed = extra.clips.map { Clip(path: $0.path, label: $0.label, speaker: "extra/" + $0.speaker) }
        var merged = Dataset(root: root + " + " + extra.root, layout: layout, clips: clips + renamed,
                             skipped: skipped + extra.skipped)
        merged.trainingOnlySpeakers = trainingOnlySpeakers.union(renamed.map(\.speaker))
        return merged
    }

    /// Clip counts per digit 0–9.
    public var labelCounts: [Int] { Self.labelCounts(of: clips.indices, in: clips) }

    /// Clip counts per digit 0–9 of the clips at `indices`.
    public func labelCounts(of indices: some Sequence<Int>) -> [Int] { Self.labelCounts(of: indices, in: clips) }

    static func labelCounts(of indices: some Sequence<Int>, in clips: [Clip]) -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for i in indices { counts[clips[i].label] += 1 }
        return counts
    }
}
