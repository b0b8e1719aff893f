import Audio
import Datasets
import Dist
import Foundation

/// Builds the feature cache with every rank: rank 0 lays out the file, each rank computes its slice of
/// every block of clips, rank 0 gathers the blocks and writes them, and then every rank maps the file.
/// Blocks keep the memory of a rank at one block's features however large the dataset.
public enum DistributedFeatureCache {
    static let blockClips = 512

    public static func open(dataset: Dataset, settings: AudioSettings, directory: String, world: Communicator,
                            log: (String) -> Void) throws -> FeatureCache {
        // 0: rank 0 failed, 1: a current cache exists, 2: build it.
        var state = 0
        var writer: FeatureCacheWriter?
        var failure: Error?
        if world.rank == 0 {
            do {
                if try FeatureCache.openIfCurrent(dataset: dataset, settings: settings, directory: directory, log: log) != nil {
                    state = 1
                } else {
                    writer = try FeatureCacheWriter(dataset: dataset, settings: settings, directory: directory)
                    log("building feature cache for \(dataset.clips.count) clips (\(writer!.dataBytes >> 20) MB) on \(world.size) ranks")
                    state = 2
                }
            } catch {
                failure = error
            }
        }
        state = try world.broadcast(state)
        if let failure { throw failure }
        guard state != 0 else { throw TrainingError("rank 0 could not open or lay out the feature cache") }
        if state == 2 {
            var frames = writer?.frames.map(Int64.init) ?? []
            try world.broadcast(&frames)
            try computeBlocks(dataset: dataset, settings: settings, frames: frames.map(Int.init), writer: writer, world: world)
            var finished = 0
            if let writer {
                do { _ = try writer.finish(log: log); finished = 1 } catch { failure = error }
            }
            finished = try world.broadcast(finished)
            if let failure { throw failure }
            guard finished == 1 else { throw TrainingError("rank 0 could not write the feature cache") }
        }
        guard let cache = try FeatureCache.openIfCurrent(dataset: dataset, settings: settings, directory: directory, log: log) else {
            throw DatasetError(path: directory, problem: "the feature cache rank 0 wrote is not readable here (is the folder shared by all nodes?)")
        }
        return cache
    }

    /// Rank r computes clips i ≡ r (mod ranks) of each block; rank 0 gathers and stores them.
    static func computeBlocks(dataset: Dataset, settings: AudioSettings, frames: [Int], writer: FeatureCacheWriter?,
                              world: Communicator) throws {
        let extractor = LogMelExtractor(settings: settings)
        for blockStart in stride(from: 0, to: dataset.clips.count, by: blockClips) {
            let block = blockStart..<min(dataset.clips.count, blockStart + blockClips)
            var values: [Float] = []
            var outcomes: [Int64] = []  // clip index, or −1 − clip index when it failed
            var reasons: [UInt8] = []   // one line per failed clip
            for i in block where i % world.size == world.rank && frames[i] > 0 {
                switch FeatureCacheWriter.features(of: dataset.clips[i], expectedFrames: frames[i], extractor: extractor) {
                case .success(let features):
                    values += features
                    outcomes.append(Int64(i))
                case .failure(let error):
                    outcomes.append(-1 - Int64(i))
                    reasons += Array("\(error)\n".utf8)
                }
            }
            let allValues = try world.gatherv(values), allOutcomes = try world.gatherv(outcomes), allReasons = try world.gatherv(reasons)
            guard let writer else { continue }
            for rank in 0..<world.size {
                var offset = 0
                var lines = String(decoding: allReasons[rank], as: UTF8.self).split(separator: "\n").makeIterator()
                for outcome in allOutcomes[rank] {
                    if outcome >= 0 {
                        let count = frames[Int(outcome)] * settings.melBins
                        allValues[rank].withUnsafeBufferPointer {
                            writer.store(clip: Int(outcome), values: UnsafeBufferPointer(rebasing: $0[offset..<(offset + count)]))
                        }
                        offset += count
                    } else {
                        writer.skip(clip: Int(-1 - outcome), reason: String(lines.next() ?? "failed"))
                    }
                }
            }
        }
    }
}
