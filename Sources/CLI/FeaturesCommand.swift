import ArgumentParser
import Audio
import Train

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Write one file's log-mel spectrogram as a NumPy .npy file.",
        discussion: """
            The (mel_frequency_bins, frames) Float32 array equals librosa's \
            power_to_db(melspectrogram(librosa.load(path, sr=22050))) with the config's audio.* settings.

            Examples:
              digits-dist features --wav clip.wav --npy clip.npy
              digits-dist features --wav clip.wav --npy clip.npy --config configs/amnist.yaml
              python3 -c "import numpy; print(numpy.load('clip.npy').shape)"
            """)

    @Option(help: "Audio file to read (WAV, FLAC, any rate and channel count).")
    var wav: String

    @Option(help: "NumPy file to write.")
    var npy: String

    @OptionGroup var configOptions: ConfigOptions

    func run() throws {
        try failing {
            let settings = try configOptions.load().audioSettings
            if let warning = LogMelExtractor.emptyFilterWarning(settings: settings) { Log.info(warning) }
            let extractor = LogMelExtractor(settings: settings)
            let (values, frames) = try extractor.logMel(path: wav)
            try NPY.write(path: npy, shape: [settings.melBins, frames], values: values)
            Log.info("\(npy): (\(settings.melBins), \(frames)) log-mel")
        }
    }
}
