// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @dev The slice of SubnetControlPlane the queue calls.
interface ISubnetControlPlane {
    function isWorkerActive(address worker) external view returns (bool);
    function recordClaim(address worker) external;
    function recordCompletion(address worker) external;
    function recordFailure(address worker) external;
}

/// @title TaskQueue (wcp reference contract)
/// @notice Named queues of activities that active workers claim, heartbeat and finish.
/// @dev Matches `TASK_QUEUE_ABI` in `src/chain/abi.ts`.
///
/// Lifecycle: None -> Pending (enqueue) -> Claimed (claim) -> Completed | Failed (by the assigned worker).
/// Expiry is derived, never stored: a Pending or Claimed activity is expired once `block.timestamp > expiresAt`,
/// a Claimed one also once `block.timestamp > lastHeartbeatAt + heartbeatTimeout`. An expired activity can no
/// longer be claimed, heartbeated, completed or failed; it is never re-queued by this contract.
///
/// `getWorkerActivities(worker)` is the worker's set of Claimed, unfinished activities. Expired activities stay in
/// it (they can no longer be finished, so they stay for good); readers filter with `getActivity(id).isExpired`.
///
/// Each queue keeps its activity ids in enqueue order plus a head index. The head is advanced lazily on claim
/// past entries that are no longer claimable (claimed, finished, or expired while Pending — all permanent), at
/// most `MAX_HEAD_ADVANCE` entries per claim so claim gas stays bounded; `pollActivity` scans from the head.
contract TaskQueue {
    uint8 internal constant STATUS_NONE = 0;
    uint8 internal constant STATUS_PENDING = 1;
    uint8 internal constant STATUS_CLAIMED = 2;
    uint8 internal constant STATUS_COMPLETED = 3;
    uint8 internal constant STATUS_FAILED = 4;

    uint256 internal constant MAX_HEAD_ADVANCE = 16;

    /// @dev Two fixed slots, so enqueue writes two fresh slots, claim and finish rewrite both, a heartbeat
    ///      rewrites slot 0 only. Timestamps are stored as uint40 (good until year 36812) and widened to the
    ///      ABI's uint64 in views.
    struct Activity {
        // slot 0: rewritten by claim, heartbeat, complete, fail
        address worker;
        uint8 status;
        uint40 lastHeartbeatAt;
        uint24 workerSlot; // 1-based position in the worker's active set; 0 when not in it
        uint24 queueId; // 1-based index into `queues`
        // slot 1: written by enqueue, claim (claimedAt, expiresAt) and finish (finishedAt)
        uint40 enqueuedAt;
        uint40 claimedAt;
        uint40 expiresAt;
        uint40 finishedAt;
        uint64 heartbeatTimeout;
        uint32 stepIndex;
        // slot 2.. (zero/empty values are never written)
        uint256 workflowInstance;
        string activityType;
        string inputRef;
        string resultRef; // result on completion, reason on failure
    }

    /// @dev The tuple returned by `getActivity` (`ACTIVITY_TUPLE` in abi.ts), field order is ABI.
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

    /// @dev A worker's Claimed, unfinished activities. Removal does not zero the vacated slot, so a busy worker's
    ///      next claim rewrites a non-zero slot (~5k gas) instead of filling a fresh one (~22k).
    struct ActiveSet {
        uint256 length;
        mapping(uint256 => uint256) at; // at[0..length) are the ids
    }

    struct Queue {
        string name;
        uint64[] ids; // activity ids in enqueue order
        uint256 head; // ids[0..head) are known not claimable
    }

    address public immutable owner;
    ISubnetControlPlane internal immutable plane;
    uint64 public immutable defaultHeartbeatTimeout;
    uint64 public immutable activityLifetime;

    /// @notice The last activity id handed out (ids start at 1).
    uint256 public activityCount;

    mapping(address => bool) public enqueuers;
    mapping(uint256 => Activity) private activities;
    mapping(address => ActiveSet) private activeSets;
    Queue[] private queues;
    mapping(bytes32 => uint24) private queueIdOf;

    event ActivityEnqueued(
        uint256 indexed activityId,
        bytes32 indexed queueKey,
        uint256 indexed workflowInstance,
        string queue,
        string activityType,
        uint32 stepIndex
    );
    event ActivityClaimed(uint256 indexed activityId, address indexed worker);
    event ActivityHeartbeat(uint256 indexed activityId, address indexed worker);
    event ActivityCompleted(uint256 indexed activityId, address indexed worker, string resultRef);
    event ActivityFailed(uint256 indexed activityId, address indexed worker, string reason);

    error NotOwner();
    error NotEnqueuer();
    error NotActiveWorker(address worker);
    error UnknownActivity(uint256 activityId);
    error NotClaimable(uint256 activityId, uint8 status);
    error NotAssignedWorker(uint256 activityId, address worker);
    error ActivityExpired(uint256 activityId);
    error EmptyQueueName();
    /// @dev Not in src/chain/abi.ts: capacity guards of the packed storage (16.7M queues / active claims).
    error CapacityExceeded();

    /// @param controlPlane_ the SubnetControlPlane consulted for `isWorkerActive` and told about claims/finishes.
    /// @param defaultHeartbeatTimeout_ seconds; used when an activity is enqueued with heartbeatTimeout 0.
    /// @param activityLifetime_ seconds an activity lives after enqueue, and again after claim.
    constructor(address controlPlane_, uint64 defaultHeartbeatTimeout_, uint64 activityLifetime_) {
        owner = msg.sender;
        plane = ISubnetControlPlane(controlPlane_);
        defaultHeartbeatTimeout = defaultHeartbeatTimeout_;
        activityLifetime = activityLifetime_;
    }

    function controlPlane() external view returns (address) {
        return address(plane);
    }

    function setEnqueuer(address account, bool allowed) external {
        if (msg.sender != owner) revert NotOwner();
        enqueuers[account] = allowed;
    }

    // ---------------------------------------------------------------- enqueue

    /// @notice Appends a Pending activity to `queue`. Owner or an allowed enqueuer only.
    /// @param heartbeatTimeout seconds; 0 means `defaultHeartbeatTimeout`.
    function enqueueActivity(
        string calldata queue,
        uint256 workflowInstance,
        uint32 stepIndex,
        string calldata activityType,
        string calldata inputRef,
        uint64 heartbeatTimeout
    ) external returns (uint256 activityId) {
        if (msg.sender != owner && !enqueuers[msg.sender]) revert NotEnqueuer();
        if (bytes(queue).length == 0) revert EmptyQueueName();

        bytes32 key = keccak256(bytes(queue));
        activityId = _newActivity(_queueId(key, queue), workflowInstance, stepIndex, heartbeatTimeout);
        // Skip writes of empty strings: the slots are already zero.
        if (bytes(activityType).length != 0) activities[activityId].activityType = activityType;
        if (bytes(inputRef).length != 0) activities[activityId].inputRef = inputRef;
        emit ActivityEnqueued(activityId, key, workflowInstance, queue, activityType, stepIndex);
    }

    /// @dev The queue's 1-based id, creating the queue on first use.
    function _queueId(bytes32 key, string calldata queue) private returns (uint24 qid) {
        qid = queueIdOf[key];
        if (qid == 0) {
            if (queues.length >= type(uint24).max) revert CapacityExceeded();
            queues.push();
            qid = uint24(queues.length);
            queues[qid - 1].name = queue;
            queueIdOf[key] = qid;
        }
    }

    /// @dev Allocates the next id, writes the fixed-size fields and appends the id to its queue.
    function _newActivity(uint24 qid, uint256 workflowInstance, uint32 stepIndex, uint64 heartbeatTimeout)
        private
        returns (uint256 activityId)
    {
        activityId = ++activityCount;
        Activity storage a = activities[activityId];
        uint40 nowTs = uint40(block.timestamp);
        a.status = STATUS_PENDING;
        a.queueId = qid;
        a.enqueuedAt = nowTs;
        a.expiresAt = _expiry(nowTs);
        a.heartbeatTimeout = heartbeatTimeout == 0 ? defaultHeartbeatTimeout : heartbeatTimeout;
        a.stepIndex = stepIndex;
        if (workflowInstance != 0) a.workflowInstance = workflowInstance;
        queues[qid - 1].ids.push(uint64(activityId));
    }

    // ---------------------------------------------------------------- poll

    /// @notice The `offset`-th (0-based) claimable activity of `queue`: Pending and not expired, enqueue order.
    /// @dev Returns `hasActivity = false` and zero values when there is none. Scans from the queue head.
    function pollActivity(string calldata queue, uint256 offset)
        external
        view
        returns (bool hasActivity, uint256 activityId, string memory activityType, string memory inputRef, uint64 expiresAt)
    {
        uint24 qid = queueIdOf[keccak256(bytes(queue))];
        if (qid == 0) return (false, 0, "", "", 0);
        Queue storage q = queues[qid - 1];
        uint256 n = q.ids.length;
        uint256 seen = 0;
        for (uint256 i = q.head; i < n; ++i) {
            uint256 id = q.ids[i];
            Activity storage a = activities[id];
            if (a.status == STATUS_PENDING && block.timestamp <= a.expiresAt) {
                if (seen == offset) return (true, id, a.activityType, a.inputRef, a.expiresAt);
                ++seen;
            }
        }
        return (false, 0, "", "", 0);
    }

    // ---------------------------------------------------------------- claim

    /// @notice Claims a Pending, unexpired activity for the caller, who must be an active worker.
    function claimActivity(uint256 activityId) external {
        if (!plane.isWorkerActive(msg.sender)) revert NotActiveWorker(msg.sender);
        Activity storage a = _existing(activityId);
        uint8 status = a.status;
        if (status != STATUS_PENDING) revert NotClaimable(activityId, status);
        if (block.timestamp > a.expiresAt) revert ActivityExpired(activityId);
        _claim(activityId, a);
    }

    /// @notice Claims every claimable id in `activityIds`, silently skipping the others (unknown, not Pending,
    ///         expired, duplicates). Reverts only with NotActiveWorker.
    /// @return claimed how many were claimed.
    function claimActivities(uint256[] calldata activityIds) external returns (uint256 claimed) {
        if (!plane.isWorkerActive(msg.sender)) revert NotActiveWorker(msg.sender);
        uint256 count = activityCount;
        for (uint256 i = 0; i < activityIds.length; ++i) {
            uint256 id = activityIds[i];
            if (id == 0 || id > count) continue;
            Activity storage a = activities[id];
            if (a.status != STATUS_PENDING || block.timestamp > a.expiresAt) continue;
            _claim(id, a);
            ++claimed;
        }
    }

    function _claim(uint256 activityId, Activity storage a) private {
        uint40 nowTs = uint40(block.timestamp);
        ActiveSet storage set = activeSets[msg.sender];
        uint256 len = set.length;
        if (len >= type(uint24).max) revert CapacityExceeded();
        set.at[len] = activityId;
        set.length = len + 1;

        a.worker = msg.sender;
        a.status = STATUS_CLAIMED;
        a.lastHeartbeatAt = nowTs;
        a.workerSlot = uint24(len + 1);
        a.claimedAt = nowTs;
        a.expiresAt = _expiry(nowTs);

        plane.recordClaim(msg.sender);
        emit ActivityClaimed(activityId, msg.sender);
        _advanceHead(a.queueId);
    }

    /// @dev Moves the queue head past entries that can never be claimed again, bounded per call.
    function _advanceHead(uint24 qid) private {
        Queue storage q = queues[qid - 1];
        uint256 h = q.head;
        uint256 start = h;
        uint256 n = q.ids.length;
        uint256 limit = h + MAX_HEAD_ADVANCE;
        if (limit > n) limit = n;
        while (h < limit) {
            Activity storage a = activities[q.ids[h]];
            if (a.status == STATUS_PENDING && block.timestamp <= a.expiresAt) break;
            ++h;
        }
        if (h != start) q.head = h;
    }

    // ---------------------------------------------------------------- heartbeat

    /// @notice Extends the claim's liveness. Assigned worker only; the activity must be Claimed and not expired.
    function heartbeat(uint256 activityId) external {
        Activity storage a = _assigned(activityId);
        a.lastHeartbeatAt = uint40(block.timestamp);
        emit ActivityHeartbeat(activityId, msg.sender);
    }

    /// @notice `heartbeat` for each id, silently skipping ids that would revert.
    /// @return accepted how many heartbeats were recorded.
    function heartbeatBatch(uint256[] calldata activityIds) external returns (uint256 accepted) {
        uint256 count = activityCount;
        uint40 nowTs = uint40(block.timestamp);
        for (uint256 i = 0; i < activityIds.length; ++i) {
            uint256 id = activityIds[i];
            if (id == 0 || id > count) continue;
            Activity storage a = activities[id];
            if (a.worker != msg.sender || a.status != STATUS_CLAIMED || _expired(a)) continue;
            a.lastHeartbeatAt = nowTs;
            emit ActivityHeartbeat(id, msg.sender);
            ++accepted;
        }
    }

    // ---------------------------------------------------------------- finish

    /// @notice Marks the activity Completed with `resultRef`. Assigned worker only; Claimed and not expired.
    function completeActivity(uint256 activityId, string calldata resultRef) external {
        Activity storage a = _assigned(activityId);
        a.status = STATUS_COMPLETED;
        _finish(a, resultRef);
        plane.recordCompletion(msg.sender);
        emit ActivityCompleted(activityId, msg.sender, resultRef);
    }

    /// @notice Marks the activity Failed; `reason` is emitted and stored in `resultRef`. Same rules as complete.
    function failActivity(uint256 activityId, string calldata reason) external {
        Activity storage a = _assigned(activityId);
        a.status = STATUS_FAILED;
        _finish(a, reason);
        plane.recordFailure(msg.sender);
        emit ActivityFailed(activityId, msg.sender, reason);
    }

    function _finish(Activity storage a, string calldata resultRef) private {
        a.finishedAt = uint40(block.timestamp);
        if (bytes(resultRef).length != 0) a.resultRef = resultRef;

        // O(1) swap-and-pop removal from the worker's active set (the vacated slot is left as is).
        ActiveSet storage set = activeSets[msg.sender];
        uint256 idx = uint256(a.workerSlot) - 1;
        uint256 last = set.length - 1;
        if (idx != last) {
            uint256 moved = set.at[last];
            set.at[idx] = moved;
            activities[moved].workerSlot = uint24(idx + 1);
        }
        set.length = last;
        a.workerSlot = 0;
    }

    // ---------------------------------------------------------------- views

    /// @notice The full activity tuple; all zero (id 0, status None) for an unknown id.
    function getActivity(uint256 activityId) external view returns (ActivityView memory) {
        ActivityView memory v;
        if (activityId == 0 || activityId > activityCount) return v;
        Activity storage a = activities[activityId];
        v.id = activityId;
        v.queue = queues[a.queueId - 1].name;
        v.workflowInstance = a.workflowInstance;
        v.stepIndex = a.stepIndex;
        v.activityType = a.activityType;
        v.inputRef = a.inputRef;
        v.status = a.status;
        v.worker = a.worker;
        v.enqueuedAt = a.enqueuedAt;
        v.claimedAt = a.claimedAt;
        v.lastHeartbeatAt = a.lastHeartbeatAt;
        v.heartbeatTimeout = a.heartbeatTimeout;
        v.expiresAt = a.expiresAt;
        v.finishedAt = a.finishedAt;
        v.isCompleted = a.status == STATUS_COMPLETED;
        v.isExpired = _expired(a);
        v.resultRef = a.resultRef;
        return v;
    }

    /// @notice The worker's Claimed, unfinished activities (expired ones included), in no particular order.
    function getWorkerActivities(address worker) external view returns (uint256[] memory) {
        ActiveSet storage set = activeSets[worker];
        uint256[] memory ids = new uint256[](set.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            ids[i] = set.at[i];
        }
        return ids;
    }

    // ---------------------------------------------------------------- internals

    function _existing(uint256 activityId) private view returns (Activity storage a) {
        if (activityId == 0 || activityId > activityCount) revert UnknownActivity(activityId);
        a = activities[activityId];
    }

    /// @dev Checks, in order: known id, caller is the assigned worker, status Claimed, not expired.
    function _assigned(uint256 activityId) private view returns (Activity storage a) {
        a = _existing(activityId);
        if (a.worker != msg.sender) revert NotAssignedWorker(activityId, msg.sender);
        uint8 status = a.status;
        if (status != STATUS_CLAIMED) revert NotClaimable(activityId, status);
        if (_expired(a)) revert ActivityExpired(activityId);
    }

    /// @dev `from + activityLifetime` as a stored timestamp, saturating instead of overflowing uint40.
    function _expiry(uint40 from) private view returns (uint40) {
        uint256 t = uint256(from) + activityLifetime;
        return t > type(uint40).max ? type(uint40).max : uint40(t);
    }

    function _expired(Activity storage a) private view returns (bool) {
        uint8 status = a.status;
        if (status == STATUS_PENDING) return block.timestamp > a.expiresAt;
        if (status == STATUS_CLAIMED) {
            return block.timestamp > a.expiresAt || block.timestamp > uint256(a.lastHeartbeatAt) + a.heartbeatTimeout;
        }
        return false;
    }
}
