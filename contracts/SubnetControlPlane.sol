// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SubnetControlPlane (wcp reference contract)
/// @notice Registry of the subnet's compute workers plus per-worker claim/completion/failure counters.
/// @dev Matches `SUBNET_CONTROL_PLANE_ABI` in `src/chain/abi.ts`. The owner (deployer) registers workers and
///      toggles them; only the wired TaskQueue may bump the counters. Capacity is informational: the TaskQueue
///      does not enforce it.
contract SubnetControlPlane {
    /// @dev Packs into one storage slot (1 + 1 + 4 + 8 + 8 + 8 = 30 bytes), so a counter bump is one SSTORE.
    struct WorkerInfo {
        bool registered;
        bool active;
        uint32 capacity;
        uint64 claimed;
        uint64 completed;
        uint64 failed;
    }

    address public immutable owner;
    address public taskQueue;

    mapping(address => WorkerInfo) private workers;

    event WorkerRegistered(address indexed worker, uint32 capacity);
    event WorkerStatusChanged(address indexed worker, bool active);

    error NotOwner();
    error NotTaskQueue();
    error UnknownWorker(address worker);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    modifier onlyTaskQueue() {
        if (msg.sender != taskQueue) revert NotTaskQueue();
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    /// @notice Wires the TaskQueue allowed to record claims, completions and failures. Re-wiring is allowed.
    function setTaskQueue(address queue) external onlyOwner {
        taskQueue = queue;
    }

    /// @notice Registers (or re-registers) `worker` with `capacity`; the worker is active afterwards.
    /// @dev Re-registering keeps the counters and re-activates the worker.
    function registerWorker(address worker, uint32 capacity) external onlyOwner {
        WorkerInfo storage w = workers[worker];
        bool wasActive = w.registered && w.active;
        w.registered = true;
        w.active = true;
        w.capacity = capacity;
        emit WorkerRegistered(worker, capacity);
        if (!wasActive) emit WorkerStatusChanged(worker, true);
    }

    function setWorkerActive(address worker, bool active) external onlyOwner {
        WorkerInfo storage w = workers[worker];
        if (!w.registered) revert UnknownWorker(worker);
        w.active = active;
        emit WorkerStatusChanged(worker, active);
    }

    function setWorkerCapacity(address worker, uint32 capacity) external onlyOwner {
        WorkerInfo storage w = workers[worker];
        if (!w.registered) revert UnknownWorker(worker);
        w.capacity = capacity;
    }

    /// @notice True when `worker` is registered and active.
    function isWorkerActive(address worker) external view returns (bool) {
        WorkerInfo storage w = workers[worker];
        return w.registered && w.active;
    }

    /// @notice The worker's record; all zero for an unknown address.
    function getWorker(address worker) external view returns (WorkerInfo memory) {
        return workers[worker];
    }

    function recordClaim(address worker) external onlyTaskQueue {
        workers[worker].claimed += 1;
    }

    function recordCompletion(address worker) external onlyTaskQueue {
        workers[worker].completed += 1;
    }

    function recordFailure(address worker) external onlyTaskQueue {
        workers[worker].failed += 1;
    }
}
