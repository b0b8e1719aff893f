import ArgumentParser
import Report
import Train

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: the run's charts and tables in one self-contained file.",
        discussion: """
            Reads steps.jsonl, metrics.jsonl, summary.json (when the run has finished) and config.yaml, and \
            draws the training loss and learning rate per step, validation accuracy and macro ROC-AUC per \
            epoch, the confusion matrix, accuracy per digit and per speaker, the k-fold table and the \
            throughput. Inline SVG and CSS only: the file opens offline in any browser. Works on a run \
            still in progress. Prints the report's path.

            Examples:
              digits-dist report runs/demo
              digits-dist report runs/fsdd-theo && chromium runs/fsdd-theo/report.html
            """)

    @Argument(help: ArgumentHelp("Run folder written by `digits-dist train`.", valueName: "run-dir"), completion: .directory)
    var runDirectory: String

    func run() throws {
        try failing {
            print(try RunReport.write(runDirectory: runDirectory))
        }
    }
}
