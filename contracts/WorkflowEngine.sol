// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @dev The slice of TaskQueue the engine calls. `ActivityView` mirrors `ACTIVITY_TUPLE` in src/chain/abi.ts.
interface ITaskQueue {
    struct ActivityView {
        uint256 id;
        string queue;
        uint256 workflowInstance;
        uint32 stepIndex;
        string activityType;
        string inputRef;
        uint8 status;
        address worker;
        uint64 enqueuedAt;
        uint64 claimedAt;
        uint64 lastHeartbeatAt;
        uint64 heartbeatTimeout;
        uint64 expiresAt;
        uint64 finishedAt;
        bool isCompleted;
        bool isExpired;
        string resultRef;
    }

    function enqueueActivity(
        string calldata queue,
        uint256 workflowInstance,
        uint32 stepIndex,
        string calldata activityType,
        string calldata inputRef,
        uint64 heartbeatTimeout
    ) external returns (uint256 activityId);

    function getActivity(uint256 activityId) external view returns (ActivityView memory);
}

/// @title WorkflowEngine (wcp reference contract)
/// @notice Linear workflows: a list of steps run one after another as TaskQueue activities on one queue.
/// @dev Matches `WORKFLOW_ENGINE_ABI` in `src/chain/abi.ts`. Must be an allowed enqueuer of the TaskQueue.
///      Anyone may start a workflow and anyone may resume it; resuming only succeeds once the current step's
///      activity is Completed. A Failed or expired step leaves the workflow Running for good (resume keeps
///      reverting with StepNotCompleted): this reference engine has no retry or cancel.
contract WorkflowEngine {
    uint8 internal constant WF_RUNNING = 1;
    uint8 internal constant WF_COMPLETED = 2;
    uint8 internal constant ACTIVITY_COMPLETED = 3;

    struct Step {
        string activityType;
        string inputRef; // empty: use the previous step's resultRef
        uint64 heartbeatTimeout; // seconds; 0: the queue's default
    }

    /// @dev One slot for starter/currentStep/stepCount/status.
    struct Workflow {
        address starter;
        uint32 currentStep;
        uint32 stepCount;
        uint8 status;
        uint256 currentActivityId;
        string queue;
    }

    /// @dev The tuple returned by `getWorkflow`, field order is ABI.
    struct WorkflowView {
        uint256 id;
        address starter;
        string queue;
        uint32 currentStep;
        uint32 stepCount;
        uint256 currentActivityId;
        uint8 status;
    }

    ITaskQueue internal immutable queueContract;

    /// @notice The last workflow instance id handed out (ids start at 1).
    uint256 public workflowCount;

    mapping(uint256 => Workflow) private workflows;
    /// @dev instance => step index => step. Step 0 is enqueued at start and never stored.
    mapping(uint256 => mapping(uint256 => Step)) private stepsOf;

    event WorkflowStarted(uint256 indexed instanceId, address indexed starter, uint32 stepCount);
    event WorkflowResumed(uint256 indexed instanceId, uint32 step, uint256 activityId);
    event WorkflowCompleted(uint256 indexed instanceId);

    error UnknownWorkflow(uint256 instanceId);
    error WorkflowFinished(uint256 instanceId);
    error StepNotCompleted(uint256 instanceId, uint256 activityId);
    error NoSteps();

    constructor(address taskQueue_) {
        queueContract = ITaskQueue(taskQueue_);
    }

    function taskQueue() external view returns (address) {
        return address(queueContract);
    }

    /// @notice Starts a workflow on `queue` and enqueues its step 0.
    function startWorkflow(string calldata queue, Step[] calldata steps) external returns (uint256 instanceId) {
        uint256 n = steps.length;
        if (n == 0) revert NoSteps();
        instanceId = ++workflowCount;

        for (uint256 i = 1; i < n; ++i) {
            Step storage s = stepsOf[instanceId][i];
            s.activityType = steps[i].activityType;
            if (bytes(steps[i].inputRef).length != 0) s.inputRef = steps[i].inputRef;
            if (steps[i].heartbeatTimeout != 0) s.heartbeatTimeout = steps[i].heartbeatTimeout;
        }

        Step calldata first = steps[0];
        uint256 activityId = queueContract.enqueueActivity(
            queue, instanceId, 0, first.activityType, first.inputRef, first.heartbeatTimeout
        );

        Workflow storage w = workflows[instanceId];
        w.starter = msg.sender;
        w.stepCount = uint32(n);
        w.status = WF_RUNNING;
        w.currentActivityId = activityId;
        w.queue = queue;
        emit WorkflowStarted(instanceId, msg.sender, uint32(n));
    }

    /// @notice Advances the workflow once its current activity is Completed: enqueues the next step (whose input
    ///         is its own inputRef, or the finished activity's resultRef when that is empty), or completes the
    ///         workflow after the last step.
    function resumeWorkflow(uint256 instanceId) external {
        Workflow storage w = workflows[instanceId];
        uint8 status = w.status;
        if (status == 0) revert UnknownWorkflow(instanceId);
        if (status == WF_COMPLETED) revert WorkflowFinished(instanceId);

        uint256 currentActivityId = w.currentActivityId;
        ITaskQueue.ActivityView memory done = queueContract.getActivity(currentActivityId);
        if (done.status != ACTIVITY_COMPLETED) revert StepNotCompleted(instanceId, currentActivityId);

        uint32 next = w.currentStep + 1;
        if (next == w.stepCount) {
            w.status = WF_COMPLETED;
            emit WorkflowCompleted(instanceId);
            return;
        }

        Step storage s = stepsOf[instanceId][next];
        string memory input = bytes(s.inputRef).length == 0 ? done.resultRef : s.inputRef;
        uint256 activityId =
            queueContract.enqueueActivity(w.queue, instanceId, next, s.activityType, input, s.heartbeatTimeout);
        w.currentStep = next;
        w.currentActivityId = activityId;
        emit WorkflowResumed(instanceId, next, activityId);
    }

    /// @notice The workflow tuple; all zero (id 0, status None) for an unknown id.
    function getWorkflow(uint256 instanceId) external view returns (WorkflowView memory) {
        WorkflowView memory v;
        Workflow storage w = workflows[instanceId];
        if (w.status == 0) return v;
        v.id = instanceId;
        v.starter = w.starter;
        v.queue = w.queue;
        v.currentStep = w.currentStep;
        v.stepCount = w.stepCount;
        v.currentActivityId = w.currentActivityId;
        v.status = w.status;
        return v;
    }
}
