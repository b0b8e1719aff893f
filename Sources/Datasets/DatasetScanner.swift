import Foundation

extension Dataset {
    /// Reads the dataset at `path`: a CSV file, or a folder in the AudioMNIST or FSDD layout (also the
    /// repositories' own roots, whose clips sit in `data/` and `recordings/`). For a CSV, audio paths are
    /// relative to `dataFolder` (default: the CSV's folder).
    public static func load(path: String, dataFolder: String? = nil, audioColumn: String = "audio",
                            labelColumn: String = "label") throws -> Dataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(path: path, problem: "no such file or folder")
        }
        // However `path` is spelled (relative, absolute, through a link), the dataset is the same: its root
        // and clip paths are the resolved ones, and so are its feature cache's name and key.
        let path = resolved(path)
        if !isDirectory.boolValue {
            guard path.lowercased().hasSuffix(".csv") else {
                throw DatasetError(path: path, problem: "not a folder or a .csv file")
            }
            return try loadCSV(path: path, dataFolder: dataFolder, audioColumn: audioColumn, labelColumn: labelColumn)
        }
        for candidate in [path, path + "/data", path + "/recordings"] {
            if let dataset = try scanFolder(candidate) {
                guard !dataset.clips.isEmpty else {
                    throw DatasetError(path: candidate, problem: "holds speaker folders but no {digit}_NN_{index}.wav clips")
                }
                return dataset
            }
        }
        throw DatasetError(path: path, problem:
            "no dataset found (expected AudioMNIST NN/{digit}_NN_{i}.wav, FSDD {digit}_{speaker}_{i}.wav, or a CSV)")
    }

    /// Every .wav and .flac file under `folder`, at any depth (a noise collection such as MUSAN's
    /// `noise/` keeps its sources in subfolders): unlabelled clips, each clip's speaker its subfolder.
    public static func loadRecordings(folder: String) throws -> Dataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw DatasetError(path: folder, problem: "no such folder")
        }
        guard isDirectory.boolValue else { throw DatasetError(path: folder, problem: "not a folder") }
        let root = resolved(folder)
        let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }.filter(isAudioFile) ?? []
        guard !files.isEmpty else { throw DatasetError(path: root, problem: "holds no .wav or .flac files") }
        let clips = files.map { file in
            let subfolder = (file as NSString).deletingLastPathComponent
            return Clip(path: root + "/" + file, label: 0, speaker: subfolder.isEmpty ? "." : subfolder)
        }
        return Dataset(root: root, layout: .recordings, clips: clips)
    }

    /// AudioMNIST when the folder holds two-digit speaker folders, FSDD when it holds matching WAVs;
    /// nil when it holds neither.
    static func scanFolder(_ root: String) throws -> Dataset? {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: root) else { return nil }
        let speakerFolders = entries.filter { name in
            var isDir: ObjCBool = false
            return name.count == 2 && name.allSatisfy(\.isNumber)
                && fm.fileExists(atPath: root + "/" + name, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
        if !speakerFolders.isEmpty {
            var clips: [Clip] = []
            var skipped: [SkippedFile] = []
            for speaker in speakerFolders {
                let folder = root + "/" + speaker
                for file in try fm.contentsOfDirectory(atPath: folder) where isAudioFile(file) {
                    let path = folder + "/" + file
                    if let parsed = parseClipName(file), parsed.speaker == speaker {
                        clips.append(Clip(path: path, label: parsed.digit, speaker: speaker))
                    } else {
                        skipped.append(SkippedFile(path: path, reason: "name is not {digit}_\(speaker)_{index}.wav"))
                    }
                }
            }
            return Dataset(root: root, layout: .audioMNIST, clips: clips, skipped: skipped)
        }
        let audioFiles = entries.filter(isAudioFile)
        let clips = audioFiles.compactMap { file in
            parseClipName(file).map { Clip(path: root + "/" + file, label: $0.digit, speaker: $0.speaker) }
        }
        guard !clips.isEmpty else { return nil }
        let skipped = audioFiles.filter { parseClipName($0) == nil }
            .map { SkippedFile(path: root + "/" + $0, reason: "name is not {digit}_{speaker}_{index}.wav") }
        return Dataset(root: root, layout: .fsdd, clips: clips, skipped: skipped)
    }

    /// CSV with a header naming `audio` and `label` columns and, optionally, `speaker`. Without a
    /// speaker column the speaker comes from a `{digit}_{speaker}_{index}` file name, else the file is its own group.
    static func loadCSV(path: String, dataFolder: String?, audioColumn audioName: String, labelColumn labelName: String) throws -> Dataset {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DatasetError(path: path, problem: "cannot be read as UTF-8 text")
        }
        let table = CSVTable(text: text)
        guard let audioColumn = table.header.firstIndex(of: audioName),
              let labelColumn = table.header.firstIndex(of: labelName) else {
            throw DatasetError(path: path, problem:
                "header must name columns \(audioName) and \(labelName) (found: \(table.header.joined(separator: ",")))")
        }
        let speakerColumn = table.header.firstIndex(of: "speaker")
        var folder = dataFolder ?? (path as NSString).deletingLastPathComponent
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError(path: path, problem: "its audio folder \(folder) does not exist (set dataset.data_folder, or fetch the data)")
        }
        folder = resolved(folder.isEmpty ? "." : folder)
        var clips: [Clip] = [], skipped: [SkippedFile] = []
        var firstLine: [String: (line: Int, label: Int)] = [:]  // by resolved audio path
        for (rowIndex, row) in table.rows.enumerated() {
            let line = rowIndex + 2
            guard row.count == table.header.count else {
                throw DatasetError(path: path, problem:
                    "line \(line) has \(row.count) fields, the header has \(table.header.count)")
            }
            let audio = row[audioColumn].trimmingCharacters(in: .whitespaces)
            guard let label = Int(row[labelColumn].trimmingCharacters(in: .whitespaces)), (0...9).contains(label) else {
                throw DatasetError(path: path, problem: "line \(line): label '\(row[labelColumn])' is not a digit 0-9")
            }
            let file = (audio as NSString).lastPathComponent
            let speaker = speakerColumn.map { row[$0].trimmingCharacters(in: .whitespaces) }
                ?? parseClipName(file)?.speaker ?? file
            let clipPath = audio.hasPrefix("/") ? audio : folder + "/" + audio
            let resolvedPath = resolved(clipPath)
            if let first = firstLine[resolvedPath] {
                guard first.label == label else {
                    throw DatasetError(path: path, problem:
                        "lines \(first.line) and \(line) list the same audio file \(audio) with labels \(first.label) and \(label)")
                }
                skipped.append(SkippedFile(path: clipPath, reason: "line \(line) repeats line \(first.line); used once"))
                continue
            }
            firstLine[resolvedPath] = (line, label)
            clips.append(Clip(path: clipPath, label: label, speaker: speaker))
        }
        guard !clips.isEmpty else { throw DatasetError(path: path, problem: "has no rows") }
        // Rooted at the CSV itself: two CSVs in one folder are two datasets with two caches.
        return Dataset(root: path, layout: .csv, clips: clips, skipped: skipped)
    }

    /// The absolute path with links and `.`/`..` resolved; for a missing file, its folder's resolved path
    /// and its name (so two spellings of one missing file still compare equal).
    static func resolved(_ path: String) -> String {
        if let real = realpath(path, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let folder = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        guard !folder.isEmpty, folder != path, let real = realpath(folder, nil) else { return (path as NSString).standardizingPath }
        defer { free(real) }
        return String(cString: real) + "/" + name
    }

    static func isAudioFile(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasSuffix(".wav") || lower.hasSuffix(".flac")
    }

    /// `{digit}_{speaker}_{index}.wav` → (digit, speaker); nil when the name has another shape.
    static func parseClipName(_ file: String) -> (digit: Int, speaker: String)? {
        let stem = (file as NSString).deletingPathExtension
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, let digit = Int(parts[0]),
              !parts[1].isEmpty, Int(parts[2]) != nil else { return nil }
        return (digit, String(parts[1]))
    }
}
