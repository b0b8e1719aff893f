@testable import Dist
import XCTest

/// The job's shape as mpirun, srun (observed variables of Slurm 22.05 with PMIx) and a plain process give it.
final class LauncherTests: XCTestCase {
    func testMpirunSetsTheWorldAndTheNode() {
        let launcher = Launcher(environment: ["OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
                                              "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "1"])
        XCTAssertEqual(launcher, Launcher(worldSize: 8, localSize: 4), "mpirun inside a Slurm job: Open MPI's numbers win")
    }

    func testSrunTaskReadsTheStep() {
        let task = ["SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "7", "SLURM_NODEID": "1",
                    "SLURM_STEP_TASKS_PER_NODE": "2(x2),3", "SLURM_NTASKS": "7"]
        XCTAssertEqual(Launcher(environment: task), Launcher(worldSize: 7, localSize: 2))
        XCTAssertEqual(Launcher(environment: task.merging(["SLURM_NODEID": "2"]) { $1 }), Launcher(worldSize: 7, localSize: 3))
    }

    func testBatchShellAndPlainProcessAreOneRank() {
        // The batch script of a 2-task job (as observed): the job's task count, no step.
        XCTAssertEqual(Launcher(environment: ["SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "5"]),
                       Launcher(worldSize: 1, localSize: 1))
        XCTAssertEqual(Launcher(environment: [:]), Launcher(worldSize: 1, localSize: 1))
    }

    func testCompressedTaskCounts() {
        XCTAssertEqual(Launcher.tasks(onNode: 0, of: "2"), 2)
        XCTAssertEqual((0..<5).map { Launcher.tasks(onNode: $0, of: "4(x3),1,2") }, [4, 4, 4, 1, 2])
        XCTAssertNil(Launcher.tasks(onNode: 6, of: "4(x3),1,2"))
        XCTAssertNil(Launcher.tasks(onNode: 0, of: "x"))
    }
}
