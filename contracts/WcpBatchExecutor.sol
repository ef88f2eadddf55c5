// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC7821} from "@openzeppelin/contracts/account/extensions/draft-ERC7821.sol";
import {
    ERC7579Utils,
    Mode,
    CallType,
    ExecType,
    ModeSelector
} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {Account} from "@openzeppelin/contracts/account/Account.sol";

/**
 * @title WcpBatchExecutor
 * @notice The code a wcp worker's EOA delegates to (EIP-7702): one transaction from the worker to itself runs many
 * lifecycle calls, each with `msg.sender` = the worker. Built on OpenZeppelin's audited ERC7821 and ERC7579Utils;
 * what this contract adds is small:
 *  - the ERC-7579 **try** execution type beside the default one (`0x0101…`: a failing call emits
 *    `ERC7579TryExecuteFail(index, returndata)` and costs only itself; `0x0100…` reverts the batch as in OZ);
 *  - `simulate`: runs each call and reports success and return data per index (an `eth_call` from the wallet to
 *    itself before sending, so calls that would fail are left out);
 *  - `receive`: a delegated wallet must still accept plain ETH transfers (its funding).
 * Only the account itself may execute or simulate (OZ's default `_erc7821AuthorizedExecutor`: caller ==
 * address(this)). Stateless: no storage is read or written, so a delegation leaves nothing behind in the wallet's
 * storage and a revocation (delegating to address 0) restores a plain EOA.
 */
contract WcpBatchExecutor is ERC7821 {
    using ERC7579Utils for *;

    /// @dev OZ's `execute`, with the execution type taken from `mode` (default or try) instead of always default.
    function execute(bytes32 mode, bytes calldata executionData) public payable override {
        if (!_erc7821AuthorizedExecutor(msg.sender, mode, executionData))
            revert Account.AccountUnauthorized(msg.sender);
        if (!supportsExecutionMode(mode)) revert UnsupportedExecutionMode();
        (, ExecType execType, , ) = Mode.wrap(mode).decodeMode();
        executionData.execBatch(execType);
    }

    /// @dev Single batch mode (`0x01`) with the default (`0x00`) or try (`0x01`) execution type, no mode selector.
    function supportsExecutionMode(bytes32 mode) public pure override returns (bool) {
        (CallType callType, ExecType execType, ModeSelector selector, ) = Mode.wrap(mode).decodeMode();
        return
            callType == ERC7579Utils.CALLTYPE_BATCH &&
            (execType == ERC7579Utils.EXECTYPE_DEFAULT || execType == ERC7579Utils.EXECTYPE_TRY) &&
            selector == ModeSelector.wrap(0x00000000);
    }

    /**
     * @notice Runs every call of `executionData` (ERC-7579 batch encoding) in order, as a try-mode `execute` would,
     * and reports each call's success and return (or revert) data. Meant for `eth_call` only: it changes state like
     * `execute` when sent in a transaction. Only the account itself may call it.
     */
    function simulate(
        bytes calldata executionData
    ) external returns (bool[] memory ok, bytes[] memory returnData) {
        if (!_erc7821AuthorizedExecutor(msg.sender, bytes32(0), executionData))
            revert Account.AccountUnauthorized(msg.sender);
        Execution[] calldata batch = executionData.decodeBatch();
        ok = new bool[](batch.length);
        returnData = new bytes[](batch.length);
        for (uint256 i = 0; i < batch.length; ++i) {
            address target = batch[i].target == address(0) ? address(this) : batch[i].target;
            (ok[i], returnData[i]) = target.call{value: batch[i].value}(batch[i].callData);
        }
    }

    /// @notice A delegated wallet still accepts plain ETH (its gas funding).
    receive() external payable {}
}
