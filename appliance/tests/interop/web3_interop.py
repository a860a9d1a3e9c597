#!/usr/bin/env python3
"""Ethereum JSON-RPC / EVM interop check of a running localnet, driven by web3.py.

Usage:
    .venv/bin/python appliance/tests/interop/web3_interop.py \
        --rpc http://127.0.0.1:9500 [--rpc http://127.0.0.1:9501 ...] \
        --artifact contracts/build/ERC20.json --chain-id 31415926

Every transaction is signed here with eth-account (keys of the dev mnemonic
"test test ... junk", m/44'/60'/0'/0/i, each account prefunded in genesis) and sent with
eth_sendRawTransaction to the first --rpc URL. The other URLs are only read, to check that
every node ends up with the same state. WebSocket subscriptions use the ws:// form of the first
URL (same host and port) unless --ws is given.

Prints "ok: ..." per passed check; stops at the first failure with "FAIL: ..." (expected vs got)
and exits 1. Exits 0 only if every check passed. The last line is "web3 interop: N passed, M failed".
"""

import argparse
import asyncio
import inspect
import json
import os
import sys
import time
import traceback
from urllib.parse import urlparse, urlunparse

try:
    import requests
    import rlp
    import websockets
    from eth_abi import decode as abi_decode
    from eth_abi import encode as abi_encode
    from eth_account import Account
    from eth_utils import keccak, to_checksum_address
    from web3 import Web3
    from web3.exceptions import ContractLogicError, TransactionNotFound
    from web3.logs import DISCARD
    from web3.middleware import ExtraDataToPOAMiddleware
except ImportError as e:  # pragma: no cover - environment problem, not a check failure
    print(f"FAIL: missing Python package ({e}); install requirements/peers.txt (make peers)", file=sys.stderr)
    sys.exit(2)

MNEMONIC = "test test test test test test test test test test test junk"
EXPECTED_ACCOUNT0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ETHER = 10**18
TOKEN_UNIT = 10**18
TOKEN_SUPPLY = 1_000_000 * TOKEN_UNIT
# Storage layout of contracts/ERC20.sol (name/symbol/decimals are constants, not in storage).
BALANCES_SLOT = 0
ALLOWANCES_SLOT = 1
TOTAL_SUPPLY_SLOT = 2
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL_TOPIC = "0x" + keccak(text="Approval(address,address,uint256)").hex()
REVERT_REASON = "ERC20: transfer amount exceeds balance"
ERROR_STRING_SELECTOR = "0x08c379a0"  # bytes4(keccak("Error(string)"))
ZERO_ADDRESS = "0x" + "00" * 20

RECEIPT_TIMEOUT_S = 60.0
SYNC_TIMEOUT_S = 90.0
WS_TIMEOUT_S = 30.0


class Failure(Exception):
    pass


_UNSET = object()


def hx(b):
    """0x-prefixed lowercase hex of bytes/HexBytes (HexBytes.hex() drops the prefix in hexbytes>=1)."""
    if isinstance(b, str):
        return b.lower() if b.startswith("0x") else "0x" + b.lower()
    return "0x" + bytes(b).hex()


def plain(x):
    """AttributeDict/HexBytes -> plain JSON-able values, for readable failure output."""
    if isinstance(x, dict) or hasattr(x, "items"):
        return {k: plain(v) for k, v in dict(x).items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (bytes, bytearray)):
        return hx(x)
    return x


def show(x):
    try:
        return json.dumps(plain(x), default=str)
    except Exception:
        return repr(x)


class Checks:
    def __init__(self):
        self.passed = 0
        self.step = "startup"

    def ok(self, msg):
        self.passed += 1
        print(f"ok: {msg}", flush=True)

    def fail(self, msg, expected=_UNSET, got=_UNSET):
        parts = [msg]
        if expected is not _UNSET:
            parts.append(f"  expected: {show(expected)}")
        if got is not _UNSET:
            parts.append(f"  got:      {show(got)}")
        raise Failure("\n".join(parts))

    def true(self, cond, msg, expected=_UNSET, got=_UNSET):
        if not cond:
            self.fail(msg, expected, got)

    def eq(self, what, expected, got):
        if expected != got:
            self.fail(f"{what}: mismatch", expected, got)

    def addr_eq(self, what, expected, got):
        if got is None or expected is None or str(expected).lower() != str(got).lower():
            self.fail(f"{what}: address mismatch", expected, got)


C = Checks()


# ---------------------------------------------------------------------------------------------
# Connections and small helpers


def make_w3(url):
    session = requests.Session()
    session.trust_env = False  # a localnet is never behind the environment's HTTP proxy
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}, session=session))
    # web3.py's validator rejects blocks whose extraData exceeds 32 bytes (a mainnet rule that
    # geth clients do not apply); this middleware only renames the field, so it is harmless here.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def raw_rpc(w3, method, params):
    """The JSON-RPC response object as the node sent it (no web3 error translation)."""
    return w3.provider.make_request(method, params)


def expect_rpc_error(w3, method, params, needles, what):
    resp = raw_rpc(w3, method, params)
    err = resp.get("error") if isinstance(resp, dict) else None
    if not err:
        C.fail(f"{what}: expected a JSON-RPC error whose message mentions one of {needles}", got=resp)
    msg = str(err.get("message", ""))
    if not any(n.lower() in msg.lower() for n in needles):
        C.fail(f"{what}: error message does not mention any of {needles}", expected=needles, got=err)
    return err


def wait_receipt(w3, tx_hash, timeout=RECEIPT_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = w3.eth.get_transaction_receipt(tx_hash)
            if r is not None:
                return r
        except TransactionNotFound:
            pass
        if time.monotonic() > deadline:
            C.fail(f"no receipt for {hx(tx_hash)} within {timeout:.0f}s (eth_getTransactionReceipt kept returning null)")
        time.sleep(0.5)


def fee_params(w3):
    """(baseFee of latest, suggested tip, maxFeePerGas = 2*baseFee + tip)."""
    latest = w3.eth.get_block("latest")
    base = latest.get("baseFeePerGas")
    if base is None:
        C.fail("latest block has no baseFeePerGas (EIP-1559 header field missing)", got=latest)
    tip = w3.eth.max_priority_fee
    return base, tip, 2 * base + tip


def legacy_gas_price(w3):
    base, tip, max_fee = fee_params(w3)
    return max(w3.eth.gas_price, max_fee)


def next_nonce(w3, addr):
    return w3.eth.get_transaction_count(addr, "pending")


def sign_and_send(w3, acct, tx, what):
    signed = acct.sign_transaction(tx)
    sent = w3.eth.send_raw_transaction(signed.raw_transaction)
    C.true(hx(sent) == hx(signed.hash), f"{what}: eth_sendRawTransaction returned a hash other than the tx's",
           expected=hx(signed.hash), got=hx(sent))
    return signed.hash


def send_and_confirm(w3, acct, tx, what):
    h = sign_and_send(w3, acct, tx, what)
    r = wait_receipt(w3, h)
    C.true(r["status"] == 1, f"{what}: receipt status is not 1", expected=1, got=r)
    C.true(hx(r["transactionHash"]) == hx(h), f"{what}: receipt is for another tx", expected=hx(h),
           got=hx(r["transactionHash"]))
    return h, r


def create_address(sender, nonce):
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def mapping_slot(key_addr, slot):
    return keccak(abi_encode(["address", "uint256"], [key_addr, slot]))


def bloom_contains(bloom, item):
    """EIP-2 / yellow-paper bloom membership: 3 bits from the low 11 bits of 3 hash byte pairs."""
    h = keccak(item)
    bloom_int = int.from_bytes(bytes(bloom), "big")
    for i in (0, 2, 4):
        bit = ((h[i] << 8) | h[i + 1]) & 2047
        if not (bloom_int >> bit) & 1:
            return False
    return True


def ws_url_of(http_url):
    u = urlparse(http_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(u.scheme)
    if scheme is None:
        raise SystemExit(f"cannot derive a WebSocket URL from {http_url!r}; pass --ws")
    return urlunparse((scheme, u.netloc, u.path, u.params, u.query, u.fragment))


# ---------------------------------------------------------------------------------------------
# Checks


def check_connection(w3, chain_id):
    C.step = "chain id / connectivity"
    got = w3.eth.chain_id
    C.eq("eth_chainId", chain_id, got)
    C.ok(f"eth_chainId is {got}")
    C.true(w3.is_connected(), "web3.is_connected() is False (it calls web3_clientVersion)",
           got=raw_rpc(w3, "web3_clientVersion", []))
    C.ok("web3.is_connected()")
    n0 = w3.eth.block_number
    deadline = time.monotonic() + 20
    while True:
        n1 = w3.eth.block_number
        if n1 > n0:
            break
        if time.monotonic() > deadline:
            C.fail("eth_blockNumber did not advance within 20s", expected=f"> {n0}", got=n1)
        time.sleep(0.5)
    C.ok(f"eth_blockNumber advances ({n0} -> {n1})")


def check_value_transfers(w3, chain_id, a0):
    C.step = "EIP-1559 value transfer"
    rcpt = Account.create().address
    C.eq(f"balance of fresh address {rcpt}", 0, w3.eth.get_balance(rcpt))
    value = 1_234_567_890_123_456_789  # ~1.23 ether, odd on purpose
    sender_before = w3.eth.get_balance(a0.address)
    C.true(sender_before >= 1000 * ETHER, f"account 0 {a0.address} is not prefunded", expected=">= 1000 ether",
           got=sender_before)
    nonce = next_nonce(w3, a0.address)
    base, tip, max_fee = fee_params(w3)
    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "to": rcpt, "value": value, "gas": 21000,
          "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    h, r = send_and_confirm(w3, a0, tx, "type-2 transfer")
    C.eq("type-2 transfer gasUsed", 21000, r["gasUsed"])
    blk = w3.eth.get_block(r["blockNumber"])
    expected_price = min(max_fee, blk["baseFeePerGas"] + tip)
    C.eq("type-2 transfer effectiveGasPrice (min(maxFee, baseFee+tip))", expected_price, r["effectiveGasPrice"])
    C.ok(f"type-2 transfer mined in block {r['blockNumber']}, status 1, gasUsed 21000, "
         f"effectiveGasPrice {r['effectiveGasPrice']}")
    C.eq(f"recipient {rcpt} balance", value, w3.eth.get_balance(rcpt))
    C.ok("recipient balance is exactly the value sent")
    sender_after = w3.eth.get_balance(a0.address)
    cost = value + r["gasUsed"] * r["effectiveGasPrice"]
    C.eq("sender balance decrease (value + gasUsed*effectiveGasPrice; account 0 must not be the fee recipient)",
         cost, sender_before - sender_after)
    C.ok(f"sender balance decreased by exactly value + gasUsed*effectiveGasPrice ({cost} wei)")
    t = w3.eth.get_transaction(h)
    C.addr_eq("eth_getTransactionByHash from", a0.address, t["from"])
    C.addr_eq("eth_getTransactionByHash to", rcpt, t["to"])
    C.eq("eth_getTransactionByHash value", value, t["value"])
    C.eq("eth_getTransactionByHash nonce", nonce, t["nonce"])
    C.eq("eth_getTransactionByHash blockNumber", r["blockNumber"], t["blockNumber"])
    C.eq("eth_getTransactionByHash hash", hx(h), hx(t["hash"]))
    C.eq("eth_getTransactionByHash type", 2, t["type"])
    C.eq("eth_getTransactionByHash maxFeePerGas", max_fee, t["maxFeePerGas"])
    C.eq("eth_getTransactionByHash maxPriorityFeePerGas", tip, t["maxPriorityFeePerGas"])
    C.ok("eth_getTransactionByHash matches (from, to, value, nonce, blockNumber, hash, type, fees)")
    last_block = r["blockNumber"]

    C.step = "legacy (EIP-155) transfer"
    rcpt_legacy = Account.create().address
    value_legacy = ETHER // 2 + 1
    gas_price = legacy_gas_price(w3)
    tx = {"chainId": chain_id, "nonce": next_nonce(w3, a0.address), "to": rcpt_legacy, "value": value_legacy,
          "gas": 21000, "gasPrice": gas_price}
    h, r = send_and_confirm(w3, a0, tx, "legacy transfer")
    C.eq("legacy transfer effectiveGasPrice (== gasPrice)", gas_price, r["effectiveGasPrice"])
    C.eq(f"legacy recipient {rcpt_legacy} balance", value_legacy, w3.eth.get_balance(rcpt_legacy))
    t = w3.eth.get_transaction(h)
    C.eq("legacy tx type", 0, t["type"])
    C.true(t["v"] in (2 * chain_id + 35, 2 * chain_id + 36), "legacy tx v is not EIP-155 (chainId*2+35/36)",
           expected=[2 * chain_id + 35, 2 * chain_id + 36], got=t["v"])
    C.ok(f"legacy EIP-155 transfer mined in block {r['blockNumber']} (type 0, v={t['v']})")
    last_block = max(last_block, r["blockNumber"])

    C.step = "EIP-2930 transfer"
    rcpt_2930 = Account.create().address
    value_2930 = ETHER // 4 + 3
    access_list = [{"address": rcpt_2930, "storageKeys": ["0x" + "00" * 31 + "01"]}]
    tx = {"type": 1, "chainId": chain_id, "nonce": next_nonce(w3, a0.address), "to": rcpt_2930,
          "value": value_2930, "gas": 30000, "gasPrice": legacy_gas_price(w3), "accessList": access_list}
    h, r = send_and_confirm(w3, a0, tx, "EIP-2930 transfer")
    C.eq("EIP-2930 transfer gasUsed (21000 + 2400 per address + 1900 per key)", 21000 + 2400 + 1900, r["gasUsed"])
    C.eq(f"EIP-2930 recipient {rcpt_2930} balance", value_2930, w3.eth.get_balance(rcpt_2930))
    t = w3.eth.get_transaction(h)
    C.eq("EIP-2930 tx type", 1, t["type"])
    got_al = [(str(e["address"]).lower(), [hx(k) for k in e["storageKeys"]]) for e in t.get("accessList", [])]
    want_al = [(e["address"].lower(), [k.lower() for k in e["storageKeys"]]) for e in access_list]
    C.eq("EIP-2930 tx accessList", want_al, got_al)
    C.ok(f"EIP-2930 transfer with an access list mined in block {r['blockNumber']} (gasUsed 25300)")
    last_block = max(last_block, r["blockNumber"])
    return rcpt, last_block


def check_deploy(w3, chain_id, a1, artifact):
    C.step = "ERC-20 deployment"
    abi = artifact["abi"]
    data = artifact["bytecode"] + abi_encode(["uint256"], [TOKEN_SUPPLY]).hex()
    est = w3.eth.estimate_gas({"from": a1.address, "data": data})
    C.true(100_000 < est < 3_000_000, "eth_estimateGas for the deployment is implausible",
           expected="100000 < gas < 3000000", got=est)
    nonce = next_nonce(w3, a1.address)
    base, tip, max_fee = fee_params(w3)
    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "data": data, "value": 0, "gas": est * 6 // 5,
          "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    h, r = send_and_confirm(w3, a1, tx, "deployment")
    addr = r.get("contractAddress")
    C.true(addr is not None, "deployment receipt has no contractAddress", got=r)
    C.addr_eq("contractAddress (keccak(rlp([sender, nonce])))", create_address(a1.address, nonce), addr)
    C.ok(f"ERC-20 deployed at {addr} in block {r['blockNumber']} (estimate {est}, gasUsed {r['gasUsed']})")
    code = hx(w3.eth.get_code(addr))
    C.true(len(code) > 2, "eth_getCode of the token is empty", got=code)
    want = artifact["deployedBytecode"].lower()
    if artifact.get("hasImmutables"):
        C.eq("eth_getCode length (contract has immutables, so only the length is compared)", len(want), len(code))
        C.ok(f"eth_getCode has the artifact's runtime length ({(len(code) - 2) // 2} bytes; immutables differ)")
    else:
        if code != want:
            C.fail("eth_getCode differs from the artifact's deployedBytecode",
                   expected=f"{want[:66]}... ({(len(want) - 2) // 2} bytes)",
                   got=f"{code[:66]}... ({(len(code) - 2) // 2} bytes)")
        C.ok(f"eth_getCode equals the artifact's deployedBytecode ({(len(code) - 2) // 2} bytes)")
    token = w3.eth.contract(address=addr, abi=abi)
    return token, r


def check_calls(token, deployer):
    C.step = "eth_call views"
    C.eq("name()", "Harmony Test Token", token.functions.name().call())
    C.eq("symbol()", "HTT", token.functions.symbol().call())
    C.eq("decimals()", 18, token.functions.decimals().call())
    C.eq("totalSupply()", TOKEN_SUPPLY, token.functions.totalSupply().call())
    C.eq("balanceOf(deployer)", TOKEN_SUPPLY, token.functions.balanceOf(deployer).call())
    C.ok("eth_call name/symbol/decimals/totalSupply/balanceOf(deployer) = "
         f"'Harmony Test Token'/'HTT'/18/{TOKEN_SUPPLY}/{TOKEN_SUPPLY}")


def token_transfer(w3, chain_id, token, sender, to, amount, what):
    """Estimates, then sends transfer(to, amount) with exactly the estimated gas. Returns (est, hash, receipt)."""
    est = token.functions.transfer(to, amount).estimate_gas({"from": sender.address})
    C.true(21000 < est < 100000, f"{what}: eth_estimateGas is implausible", expected="21000 < gas < 100000", got=est)
    base, tip, max_fee = fee_params(w3)
    tx = token.functions.transfer(to, amount).build_transaction({
        "from": sender.address, "chainId": chain_id, "nonce": next_nonce(w3, sender.address), "gas": est,
        "type": 2, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip,
    })
    h, r = send_and_confirm(w3, sender, tx, what)
    return est, h, r


def check_token_transfer(w3, chain_id, token, a1):
    C.step = "token transfer"
    to = Account.create().address
    amount = 1234 * TOKEN_UNIT + 5
    est, h, r = token_transfer(w3, chain_id, token, a1, to, amount, "token transfer")
    C.ok(f"eth_estimateGas for transfer() is {est}; the transfer mined with that gas "
         f"(gasUsed {r['gasUsed']}, block {r['blockNumber']})")
    C.eq("token transfer receipt: number of logs", 1, len(r["logs"]))
    events = token.events.Transfer().process_receipt(r, errors=DISCARD)
    C.eq("Transfer events decoded from the receipt", 1, len(events))
    ev = events[0]
    C.addr_eq("Transfer.from", a1.address, ev["args"]["from"])
    C.addr_eq("Transfer.to", to, ev["args"]["to"])
    C.eq("Transfer.value", amount, ev["args"]["value"])
    C.addr_eq("Transfer log address", token.address, ev["address"])
    C.ok("receipt has exactly one Transfer event (from, to, value decoded via the ABI)")
    bloom = bytes(r["logsBloom"])
    C.eq("logsBloom length", 256, len(bloom))
    C.true(any(bloom), "receipt logsBloom is all zero although the receipt has a log", got=hx(bloom))
    for what, item in (("token address", bytes.fromhex(token.address[2:])),
                       ("Transfer topic", bytes.fromhex(TRANSFER_TOPIC[2:]))):
        C.true(bloom_contains(bloom, item), f"receipt logsBloom does not contain the {what}", got=hx(bloom))
    blk = w3.eth.get_block(r["blockNumber"])
    C.true(bloom_contains(blk["logsBloom"], bytes.fromhex(token.address[2:])),
           "block logsBloom does not contain the token address", got=hx(blk["logsBloom"]))
    C.ok("receipt and block logsBloom are nonzero and contain the token address and Transfer topic")
    C.eq("balanceOf(recipient) after transfer", amount, token.functions.balanceOf(to).call())
    C.eq("balanceOf(deployer) after transfer", TOKEN_SUPPLY - amount, token.functions.balanceOf(a1.address).call())
    C.ok("token balances after transfer are exact")
    return to, amount, h, r


def check_logs(w3, token, deploy_receipt, deployer, tok_rcpt, amount, transfer_hash, transfer_receipt):
    C.step = "eth_getLogs"
    frm, to = deploy_receipt["blockNumber"], transfer_receipt["blockNumber"]
    logs = w3.eth.get_logs({"fromBlock": frm, "toBlock": to, "address": token.address, "topics": [TRANSFER_TOPIC]})
    C.eq(f"eth_getLogs Transfer count over blocks {frm}..{to}", 2, len(logs))
    mint, xfer = sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"]))
    pad = lambda a: "0x" + "00" * 12 + a[2:].lower()  # noqa: E731
    C.eq("mint log tx", hx(deploy_receipt["transactionHash"]), hx(mint["transactionHash"]))
    C.eq("mint log topics", [TRANSFER_TOPIC, pad(ZERO_ADDRESS), pad(deployer)], [hx(t) for t in mint["topics"]])
    C.eq("mint log value", TOKEN_SUPPLY, int.from_bytes(bytes(mint["data"]), "big"))
    C.eq("transfer log tx", hx(transfer_hash), hx(xfer["transactionHash"]))
    C.eq("transfer log topics", [TRANSFER_TOPIC, pad(deployer), pad(tok_rcpt)], [hx(t) for t in xfer["topics"]])
    C.eq("transfer log value", amount, int.from_bytes(bytes(xfer["data"]), "big"))
    C.eq("transfer log blockHash", hx(transfer_receipt["blockHash"]), hx(xfer["blockHash"]))
    C.ok(f"eth_getLogs finds the mint and the transfer over blocks {frm}..{to}")
    only = w3.eth.get_logs({"fromBlock": frm, "toBlock": to, "address": token.address,
                            "topics": [TRANSFER_TOPIC, None, pad(tok_rcpt)]})
    C.eq("eth_getLogs with topics [Transfer, null, recipient]: tx hashes", [hx(transfer_hash)],
         [hx(lg["transactionHash"]) for lg in only])
    C.ok("eth_getLogs with a null-wildcard topic position finds only the transfer")
    none = w3.eth.get_logs({"fromBlock": frm, "toBlock": to, "address": token.address, "topics": [APPROVAL_TOPIC]})
    C.eq("eth_getLogs with a non-matching topic (Approval)", [], [plain(lg) for lg in none])
    none = w3.eth.get_logs({"fromBlock": frm, "toBlock": to, "address": Account.create().address,
                            "topics": [TRANSFER_TOPIC]})
    C.eq("eth_getLogs for another address", [], [plain(lg) for lg in none])
    C.ok("eth_getLogs with a non-matching topic or address finds nothing")


def check_revert(w3, token, deployer):
    C.step = "eth_call revert"
    too_much = TOKEN_SUPPLY + 1
    to = Account.create().address
    try:
        res = token.functions.transfer(to, too_much).call({"from": deployer})
        C.fail("eth_call of transfer(amount > balance) did not revert", expected=f"revert '{REVERT_REASON}'", got=res)
    except ContractLogicError as e:
        text = f"{getattr(e, 'message', '')} {e}"
        C.true(REVERT_REASON in text, "ContractLogicError does not carry the revert reason",
               expected=REVERT_REASON, got=text)
        C.ok(f"web3 raises ContractLogicError: {getattr(e, 'message', None) or e}")
    except Failure:
        raise
    except Exception as e:  # an equivalent error type still has to carry the reason
        text = str(e)
        C.true(REVERT_REASON in text, f"eth_call revert raised {type(e).__name__} without the revert reason",
               expected=f"ContractLogicError with '{REVERT_REASON}'", got=text)
        C.ok(f"web3 raises {type(e).__name__} (not ContractLogicError) carrying the reason: {text}")
    data = token.encode_abi("transfer", args=[to, too_much])
    resp = raw_rpc(w3, "eth_call", [{"from": deployer, "to": token.address, "data": data}, "latest"])
    err = resp.get("error")
    C.true(err is not None, "raw eth_call of a reverting transfer returned no error", got=resp)
    C.eq("raw eth_call revert error code", 3, err.get("code"))
    rdata = err.get("data")
    if isinstance(rdata, dict):  # some clients nest it; geth/anvil put the hex string here directly
        rdata = rdata.get("data")
    C.true(isinstance(rdata, str) and rdata.lower().startswith(ERROR_STRING_SELECTOR),
           "raw eth_call revert error data is not Error(string) ABI data", expected=f"{ERROR_STRING_SELECTOR}...",
           got=err)
    (reason,) = abi_decode(["string"], bytes.fromhex(rdata[10:]))
    C.eq("revert data decoded as Error(string)", REVERT_REASON, reason)
    C.true("revert" in str(err.get("message", "")).lower(), "raw eth_call revert message does not say 'revert'",
           got=err)
    C.ok(f"raw eth_call revert: code 3, data Error(string) '{reason}', message '{err.get('message')}'")


def check_tx_errors(w3, chain_id, a0):
    C.step = "transaction errors"
    base, tip, max_fee = fee_params(w3)

    def tx2(nonce, gas=21000, value=1):
        return {"type": 2, "chainId": chain_id, "nonce": nonce, "to": Account.create().address, "value": value,
                "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}

    pending = next_nonce(w3, a0.address)
    C.true(pending >= 1, "account 0 should have sent transactions by now", got=pending)
    stale = a0.sign_transaction(tx2(0))
    err = expect_rpc_error(w3, "eth_sendRawTransaction", [hx(stale.raw_transaction)], ["nonce too low"],
                           "tx with an already used nonce (0)")
    C.ok(f"used nonce rejected: {err.get('message')!r} (code {err.get('code')})")

    broke = Account.create()
    poor = broke.sign_transaction(tx2(0))
    err = expect_rpc_error(w3, "eth_sendRawTransaction", [hx(poor.raw_transaction)], ["insufficient funds"],
                           f"tx from unfunded {broke.address}")
    C.ok(f"unfunded sender rejected: {err.get('message')!r} (code {err.get('code')})")

    low = a0.sign_transaction(tx2(pending, gas=20000))
    err = expect_rpc_error(w3, "eth_sendRawTransaction", [hx(low.raw_transaction)], ["intrinsic gas too low"],
                           "tx with gas 20000")
    C.ok(f"gas below intrinsic rejected: {err.get('message')!r} (code {err.get('code')})")
    over = a0.sign_transaction({**tx2(pending), "maxFeePerGas": base, "maxPriorityFeePerGas": base + 1})
    err = expect_rpc_error(w3, "eth_sendRawTransaction", [hx(over.raw_transaction)],
                           ["max priority fee per gas higher than max fee per gas"], "tx with tip above its fee cap")
    C.ok(f"tip above the fee cap rejected: {err.get('message')!r} (code {err.get('code')})")
    C.eq("account 0 pending nonce after the rejected txs", pending, next_nonce(w3, a0.address))

    resp = raw_rpc(w3, "eth_sendRawTransaction", ["0xdeadbeef"])
    err = resp.get("error") if isinstance(resp, dict) else None
    C.true(err is not None, "eth_sendRawTransaction(0xdeadbeef) did not return an error", got=resp)
    needles = ["decode", "rlp", "invalid"]
    C.true(any(n in str(err.get("message", "")).lower() for n in needles),
           f"eth_sendRawTransaction(0xdeadbeef) error does not mention {needles}", got=err)
    n = w3.eth.block_number
    C.ok(f"garbage raw tx rejected: {err.get('message')!r} (code {err.get('code')}); node still answers "
         f"(block {n})")
    C.step = "replacement underpriced"
    print("skip: same-nonce replacement with a barely higher fee (cannot hold a tx pending with fast blocks)",
          flush=True)


def check_blocks(w3, tx_hash, receipt):
    C.step = "blocks"
    latest = w3.eth.get_block("latest", False)
    for k in ("number", "hash", "parentHash", "timestamp", "transactions", "stateRoot", "receiptsRoot",
              "gasLimit", "gasUsed", "baseFeePerGas", "logsBloom"):
        C.true(k in latest, f"latest block lacks '{k}'", got=sorted(latest.keys()))
    C.true(all(isinstance(t, (bytes, bytearray)) and len(t) == 32 for t in latest["transactions"]),
           "eth_getBlockByNumber('latest', false) transactions are not 32-byte hashes", got=latest["transactions"])
    C.ok(f"eth_getBlockByNumber('latest', false): block {latest['number']}, "
         f"{len(latest['transactions'])} tx hashes")

    n = receipt["blockNumber"]
    hashes = w3.eth.get_block(n, False)
    C.true(hx(tx_hash) in [hx(t) for t in hashes["transactions"]],
           f"eth_getBlockByNumber({n}, false) does not list the tx hash", expected=hx(tx_hash),
           got=hashes["transactions"])
    C.eq(f"block {n} hash vs receipt blockHash", hx(receipt["blockHash"]), hx(hashes["hash"]))
    full = w3.eth.get_block(n, True)
    txs = full["transactions"]
    C.true(all(hasattr(t, "keys") for t in txs), f"eth_getBlockByNumber({n}, true) transactions are not objects",
           got=txs)
    C.eq(f"block {n}: full tx hashes vs hash-only list", [hx(t) for t in hashes["transactions"]],
         [hx(t["hash"]) for t in txs])
    mine = [t for t in txs if hx(t["hash"]) == hx(tx_hash)][0]
    C.eq("full tx blockNumber", n, mine["blockNumber"])
    C.eq("full tx blockHash", hx(full["hash"]), hx(mine["blockHash"]))
    C.eq("full tx transactionIndex", receipt["transactionIndex"], mine["transactionIndex"])
    C.ok(f"eth_getBlockByNumber({n}, true) has full tx objects ({len(txs)})")
    by_hash = w3.eth.get_block(full["hash"], True)
    if plain(by_hash) != plain(full):
        C.fail("eth_getBlockByHash differs from eth_getBlockByNumber", expected=full, got=by_hash)
    C.ok("eth_getBlockByHash returns the same block")

    latest_before = w3.eth.block_number
    got = {}
    for tag in ("earliest", "finalized", "safe", "latest", "pending"):
        resp = raw_rpc(w3, "eth_getBlockByNumber", [tag, False])
        blk = resp.get("result") if isinstance(resp, dict) else None
        C.true(isinstance(blk, dict) and isinstance(blk.get("transactions"), list),
               f"eth_getBlockByNumber('{tag}', false) did not return a block", got=resp)
        num = blk.get("number")
        C.true(isinstance(num, str) and num.startswith("0x"), f"block '{tag}' has no hex number", got=blk)
        got[tag] = int(num, 16)
    latest_after = w3.eth.block_number
    C.eq("'earliest' block number", 0, got["earliest"])
    C.true(got["finalized"] <= got["safe"] <= latest_after,
           "block tags out of order (want finalized <= safe <= latest)", expected=f"<= {latest_after}", got=got)
    C.true(got["pending"] >= latest_before, "'pending' is behind 'latest'", expected=f">= {latest_before}", got=got)
    C.ok(f"block tags work: {got}")


def check_block_reads(w3, tx_hash, receipt):
    C.step = "transactions by block and index, block receipts, net_"
    n, i, bhash = receipt["blockNumber"], receipt["transactionIndex"], receipt["blockHash"]
    want = plain(w3.eth.get_transaction(tx_hash))
    C.eq(f"eth_getTransactionByBlockNumberAndIndex({n}, {i})", want, plain(w3.eth.get_transaction_by_block(n, i)))
    C.eq(f"eth_getTransactionByBlockHashAndIndex(.., {i})", want, plain(w3.eth.get_transaction_by_block(bhash, i)))
    count = w3.eth.get_block_transaction_count(n)
    C.eq("eth_getBlockTransactionCountByHash vs ByNumber", count, w3.eth.get_block_transaction_count(bhash))
    past = raw_rpc(w3, "eth_getTransactionByBlockNumberAndIndex", [hex(n), hex(count)])
    C.eq(f"transaction index {count} (past the block's end)", None, past.get("result", "missing"))
    C.ok(f"block {n}: transaction {i} by number and by hash and index, {count} transactions, null past the end")
    receipts = w3.eth.get_block_receipts(n)
    C.eq(f"eth_getBlockReceipts({n}) count", count, len(receipts))
    C.eq(f"eth_getBlockReceipts({n})[{i}]", plain(w3.eth.get_transaction_receipt(tx_hash)), plain(receipts[i]))
    C.eq("eth_getBlockReceipts by hash", plain(receipts), plain(w3.eth.get_block_receipts(bhash)))
    C.ok(f"eth_getBlockReceipts({n}) by number and by hash: {len(receipts)} receipts, the same as one by one")
    C.eq("eth_getUncleCountByBlockNumber", 0, int(raw_rpc(w3, "eth_getUncleCountByBlockNumber", [hex(n)])["result"], 16))
    C.true(w3.net.listening, "net_listening is false")
    peers = w3.net.peer_count
    C.true(peers >= 1, "net_peerCount: a node of a running network has no peers", got=peers)
    C.ok(f"no uncles; net_listening true; net_peerCount {peers}")


def check_filters(w3, chain_id, token, sender):
    C.step = "polling filters"
    blocks = w3.eth.filter("latest")
    logs = w3.eth.filter({"address": token.address, "topics": [TRANSFER_TOPIC]})
    start = w3.eth.block_number
    to, amount = Account.create().address, 77
    _, h, r = token_transfer(w3, chain_id, token, sender, to, amount, "transfer under a log filter")
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while w3.eth.block_number < r["blockNumber"] + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    new = [hx(b) for b in blocks.get_new_entries()]
    C.true(len(new) >= 2, "eth_getFilterChanges (block filter) reported fewer than 2 new blocks", got=new)
    first = w3.eth.get_block(new[0])["number"]
    C.true(start <= first <= start + 1, "block filter: the first new block is not the one after the filter's tip",
           expected=f"#{start} or #{start + 1}", got=first)
    C.eq("block filter: the hashes of consecutive new blocks",
         [hx(w3.eth.get_block(first + k)["hash"]) for k in range(len(new))], new)
    seen = [(hx(lg["transactionHash"]), lg["logIndex"]) for lg in logs.get_new_entries()]
    C.eq("log filter: the Transfer logs since it was installed", [(hx(h), r["logs"][0]["logIndex"])], seen)
    C.eq("log filter polled again: nothing new", [], [plain(x) for x in logs.get_new_entries()])
    C.ok(f"eth_newBlockFilter reported {len(new)} new blocks from #{first}; eth_newFilter reported the one "
         "Transfer once")
    ranged = w3.eth.filter({"fromBlock": r["blockNumber"], "toBlock": r["blockNumber"], "address": token.address})
    C.eq("eth_getFilterLogs over the transfer's block", [hx(h)],
         [hx(lg["transactionHash"]) for lg in ranged.get_all_entries()])
    for f in (blocks, logs, ranged):
        C.true(w3.eth.uninstall_filter(f.filter_id), "eth_uninstallFilter of an installed filter returned false")
    C.eq("eth_uninstallFilter again", False, w3.eth.uninstall_filter(logs.filter_id))
    expect_rpc_error(w3, "eth_getFilterChanges", [logs.filter_id], ["filter not found"], "poll after uninstall")
    C.ok("eth_getFilterLogs returns the range's logs; uninstalled filters answer 'filter not found'")


def check_fees(w3):
    C.step = "fee methods"
    gp = w3.eth.gas_price
    C.true(isinstance(gp, int) and gp >= 0, "eth_gasPrice is not a non-negative integer", got=gp)
    tip = w3.eth.max_priority_fee
    C.true(isinstance(tip, int) and tip >= 0, "eth_maxPriorityFeePerGas is not a non-negative integer", got=tip)
    raw = raw_rpc(w3, "eth_maxPriorityFeePerGas", [])
    C.true("result" in raw, "eth_maxPriorityFeePerGas is not implemented (web3 fell back to eth_feeHistory)",
           got=raw)
    C.ok(f"eth_gasPrice {gp}, eth_maxPriorityFeePerGas {tip}")
    before = w3.eth.block_number
    fh = w3.eth.fee_history(4, "latest", [25, 75])
    after = w3.eth.block_number
    C.true(isinstance(fh["oldestBlock"], int), "feeHistory.oldestBlock", got=fh)
    C.true(before <= fh["oldestBlock"] + 3 <= after, "feeHistory(4, latest) does not end at the latest block",
           expected=f"oldestBlock+3 in [{before}, {after}]", got=fh["oldestBlock"])
    C.eq("len(feeHistory.baseFeePerGas) (blockCount + 1)", 5, len(fh["baseFeePerGas"]))
    C.eq("len(feeHistory.gasUsedRatio)", 4, len(fh["gasUsedRatio"]))
    C.true(all(0 <= x <= 1 for x in fh["gasUsedRatio"]), "feeHistory.gasUsedRatio out of [0, 1]", got=fh)
    C.true(all(isinstance(x, int) and x >= 0 for x in fh["baseFeePerGas"]), "feeHistory.baseFeePerGas", got=fh)
    C.eq("len(feeHistory.reward)", 4, len(fh.get("reward", [])))
    for rw in fh["reward"]:
        C.true(len(rw) == 2 and all(isinstance(x, int) and x >= 0 for x in rw) and rw[0] <= rw[1],
               "feeHistory.reward entry is not [p25 <= p75]", got=fh)
    C.ok(f"eth_feeHistory(4, latest, [25, 75]): oldestBlock {fh['oldestBlock']}, "
         f"baseFeePerGas {list(fh['baseFeePerGas'])}, reward {[list(r) for r in fh['reward']]}")


def check_storage(w3, token, deployer):
    C.step = "eth_getStorageAt"
    supply = token.functions.totalSupply().call()
    raw = bytes(w3.eth.get_storage_at(token.address, TOTAL_SUPPLY_SLOT))
    C.eq(f"eth_getStorageAt slot {TOTAL_SUPPLY_SLOT} (totalSupply) length", 32, len(raw))
    C.eq(f"eth_getStorageAt slot {TOTAL_SUPPLY_SLOT} (totalSupply)", supply, int.from_bytes(raw, "big"))
    slot = mapping_slot(deployer, BALANCES_SLOT)
    got = int.from_bytes(bytes(w3.eth.get_storage_at(token.address, int.from_bytes(slot, "big"))), "big")
    C.eq("eth_getStorageAt keccak(deployer . 0) (balanceOf[deployer])", token.functions.balanceOf(deployer).call(),
         got)
    C.ok(f"eth_getStorageAt: slot {TOTAL_SUPPLY_SLOT} = totalSupply ({supply}), balanceOf mapping slot matches")


def check_same_state(urls, chain_id, height, addrs, token, token_holders, w3_first):
    C.step = "same state on every node"
    abi = token.abi
    ref = None
    for url in urls:
        w3 = w3_first if url == urls[0] else make_w3(url)
        C.eq(f"{url}: eth_chainId", chain_id, w3.eth.chain_id)
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while True:
            n = w3.eth.block_number
            if n >= height:
                break
            if time.monotonic() > deadline:
                C.fail(f"{url} did not reach block {height} within {SYNC_TIMEOUT_S:.0f}s", expected=f">= {height}",
                       got=n)
            time.sleep(0.5)
        tok = w3.eth.contract(address=token.address, abi=abi)
        state = {
            "block_hash": hx(w3.eth.get_block(height)["hash"]),
            "balances": {a: w3.eth.get_balance(a) for a in addrs},
            "token_balances": {a: tok.functions.balanceOf(a).call() for a in token_holders},
        }
        if ref is None:
            ref = state
        elif state != ref:
            C.fail(f"{url} disagrees with {urls[0]} at/after block {height}", expected=ref, got=state)
        C.ok(f"{url}: at block >= {height}, hash {state['block_hash'][:18]}..., balances and token balances "
             f"{'recorded' if url == urls[0] else 'match ' + urls[0]}")


class WsRpc:
    """Raw JSON-RPC over one WebSocket, keeping subscription notifications that arrive early."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.notes = []

    async def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise asyncio.TimeoutError
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
        return msg

    async def call(self, method, params, timeout=15.0):
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await self._recv(deadline)
            except asyncio.TimeoutError:
                C.fail(f"ws {method}: no response within {timeout:.0f}s")
            if msg.get("id") == rid:
                if "error" in msg:
                    C.fail(f"ws {method}{params} returned an error", got=msg)
                return msg.get("result")
            if msg.get("method") == "eth_subscription":
                self.notes.append(msg["params"])

    async def notification(self, sub_id, deadline, what):
        while True:
            for i, p in enumerate(self.notes):
                if p.get("subscription") == sub_id:
                    return self.notes.pop(i)["result"]
            try:
                msg = await self._recv(deadline)
            except asyncio.TimeoutError:
                C.fail(f"ws: {what}: nothing within the time limit")
            if msg.get("method") == "eth_subscription":
                self.notes.append(msg["params"])


async def ws_checks(ws_url, w3, chain_id, token, sender):
    C.step = "WebSocket subscriptions"
    kwargs = {"open_timeout": 15, "max_size": None}
    if "proxy" in inspect.signature(websockets.connect).parameters:
        kwargs["proxy"] = None  # websockets>=15 would otherwise honour proxy environment variables
    try:
        ws = await websockets.connect(ws_url, **kwargs)
    except Exception as e:
        C.fail(f"cannot open a WebSocket to {ws_url}: {type(e).__name__}: {e}")
    try:
        rpc = WsRpc(ws)
        sub = await rpc.call("eth_subscribe", ["newHeads"])
        C.true(isinstance(sub, str) and sub.startswith("0x"), "eth_subscribe newHeads: bad subscription id", got=sub)
        deadline = time.monotonic() + WS_TIMEOUT_S
        heads = []
        while len(heads) < 2:
            head = await rpc.notification(sub, deadline, f"newHeads (have {len(heads)} of 2 in {WS_TIMEOUT_S:.0f}s)")
            for k in ("number", "hash", "parentHash"):
                C.true(k in head, f"newHeads notification lacks '{k}'", got=head)
            if heads and int(head["number"], 16) <= int(heads[-1]["number"], 16):
                C.fail("newHeads numbers do not increase", expected=f"> {heads[-1]['number']}", got=head["number"])
            heads.append(head)
        a, b = int(heads[0]["number"], 16), int(heads[1]["number"], 16)
        if b == a + 1:
            C.eq("newHeads: second head's parentHash", heads[0]["hash"].lower(), heads[1]["parentHash"].lower())
        C.ok(f"eth_subscribe newHeads over {ws_url}: heads {a} -> {b}")
        res = await rpc.call("eth_unsubscribe", [sub])
        C.eq("eth_unsubscribe result", True, res)

        logs_sub = await rpc.call("eth_subscribe", ["logs", {"address": token.address, "topics": [TRANSFER_TOPIC]}])
        C.true(isinstance(logs_sub, str) and logs_sub.startswith("0x"), "eth_subscribe logs: bad subscription id",
               got=logs_sub)
        to = Account.create().address
        amount = 7 * TOKEN_UNIT + 11

        def send():
            base, tip, max_fee = fee_params(w3)
            est = token.functions.transfer(to, amount).estimate_gas({"from": sender.address})
            tx = token.functions.transfer(to, amount).build_transaction({
                "from": sender.address, "chainId": chain_id, "nonce": next_nonce(w3, sender.address),
                "gas": est, "type": 2, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
            return sign_and_send(w3, sender, tx, "token transfer (ws logs)")

        tx_hash = hx(await asyncio.to_thread(send))
        deadline = time.monotonic() + WS_TIMEOUT_S
        while True:
            log = await rpc.notification(logs_sub, deadline, f"Transfer log of {tx_hash}")
            if str(log.get("transactionHash", "")).lower() == tx_hash and not log.get("removed", False):
                break
            print(f"note: ignoring another log on the subscription: {show(log)}", flush=True)
        pad = lambda x: "0x" + "00" * 12 + x[2:].lower()  # noqa: E731
        C.addr_eq("ws log address", token.address, log.get("address"))
        C.eq("ws log topics", [TRANSFER_TOPIC, pad(sender.address), pad(to)], [t.lower() for t in log["topics"]])
        C.eq("ws log value", amount, int(log["data"], 16))
        r = await asyncio.to_thread(wait_receipt, w3, tx_hash)
        C.eq("ws transfer receipt status", 1, r["status"])
        C.eq("ws log blockNumber vs receipt", r["blockNumber"], int(log["blockNumber"], 16))
        C.eq("ws log blockHash vs receipt", hx(r["blockHash"]), log["blockHash"].lower())
        C.ok(f"eth_subscribe logs (token address, Transfer topic) delivered the transfer's log "
             f"(block {r['blockNumber']})")
        await rpc.call("eth_unsubscribe", [logs_sub])
    finally:
        await ws.close()


# ---------------------------------------------------------------------------------------------


STAKING_PRECOMPILE = to_checksum_address("0x00000000000000000000000000000000000000fc")
STAKING_ABI = [
    {"type": "function", "name": "Delegate", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": "delegatorAddress", "type": "address"},
                {"name": "validatorAddress", "type": "address"},
                {"name": "amount", "type": "uint256"}]},
    {"type": "function", "name": "Undelegate", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": "delegatorAddress", "type": "address"},
                {"name": "validatorAddress", "type": "address"},
                {"name": "amount", "type": "uint256"}]},
    {"type": "function", "name": "CollectRewards", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": "delegatorAddress", "type": "address"}]},
]


def check_staking_precompile(w3, chain_id, delegator, validator):
    """A wallet delegates through the staking precompile at 0xfc with an ordinary transaction:
    web3.py estimates its gas (eth_estimateGas runs the precompile), signs and sends it, and
    hmy_getDelegationsByDelegator shows the stake; a delegation for someone else is refused
    at estimation with the rule's message."""
    C.step = "staking precompile"
    staking = w3.eth.contract(address=STAKING_PRECOMPILE, abi=STAKING_ABI)
    amount = 150 * 10**18
    before = w3.eth.get_balance(delegator.address)
    _, tip, max_fee = fee_params(w3)
    tx = staking.functions.Delegate(delegator.address, validator, amount).build_transaction({
        "from": delegator.address, "nonce": next_nonce(w3, delegator.address), "chainId": chain_id,
        "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
    C.true(tx["gas"] > 21000, "estimated gas covers the precompile", expected="> 21000", got=tx["gas"])
    _, r = send_and_confirm(w3, delegator, tx, "Delegate through 0xfc")
    logs = [l for l in r["logs"] if l["address"].lower() == STAKING_PRECOMPILE.lower()]
    C.eq("logs from 0xfc", 1, len(logs))
    after = w3.eth.get_balance(delegator.address)
    fee = r["gasUsed"] * r["effectiveGasPrice"]
    C.eq("balance after delegating", before - amount - fee, after)
    delegations = raw_rpc(w3, "hmy_getDelegationsByDelegator", [delegator.address])["result"]
    mine = [d for d in delegations if d["validator_address"].lower() == validator.lower()]
    C.eq("delegations to the validator", 1, len(mine))
    C.eq("delegated amount", str(amount), mine[0]["amount"])
    C.ok("a wallet delegated through the staking precompile")
    try:
        staking.functions.Delegate(validator, validator, amount).estimate_gas({"from": delegator.address})
        C.fail("a delegation for another address was estimated as fine")
    except Exception as e:  # web3 raises ContractLogicError with the revert reason
        C.true("is not the caller" in str(e), "refusal names the rule", expected="is not the caller", got=str(e))
    C.ok("a delegation for someone else is refused with the rule's message")


def load_artifact(path):
    try:
        with open(path) as f:
            art = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"FAIL: cannot load artifact {path}: {e} (build it with scripts/build_contracts.sh)")
    for k in ("abi", "bytecode", "deployedBytecode"):
        if k not in art:
            raise SystemExit(f"FAIL: artifact {path} has no '{k}'")
    for k in ("bytecode", "deployedBytecode"):
        if not (isinstance(art[k], str) and art[k].startswith("0x") and len(art[k]) > 2):
            raise SystemExit(f"FAIL: artifact {path}: '{k}' is not 0x-prefixed code")
    return art


def derive_accounts(n):
    Account.enable_unaudited_hdwallet_features()
    accts = [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)]
    if accts[0].address != EXPECTED_ACCOUNT0:
        raise SystemExit(f"FAIL: mnemonic derivation gave {accts[0].address}, expected {EXPECTED_ACCOUNT0}")
    return accts


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Ethereum JSON-RPC / EVM interop checks (web3.py) against a running localnet.")
    p.add_argument("--rpc", action="append", required=True, metavar="URL",
                   help="JSON-RPC HTTP endpoint; repeat for every node. The first one receives all transactions.")
    p.add_argument("--artifact", default=os.path.join("contracts", "build", "ERC20.json"),
                   help="ERC-20 artifact from scripts/build_contracts.sh (default: %(default)s)")
    p.add_argument("--chain-id", type=int, default=31415926, help="expected eth_chainId (default: %(default)s)")
    p.add_argument("--validator", metavar="ADDRESS",
                   help="a registered validator: delegate to it through the staking precompile")
    p.add_argument("--ws", metavar="URL",
                   help="WebSocket endpoint for eth_subscribe (default: the first --rpc with http->ws)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    artifact = load_artifact(args.artifact)
    ws_url = args.ws or ws_url_of(args.rpc[0])
    a0, a1, a2 = derive_accounts(3)
    w3 = make_w3(args.rpc[0])
    try:
        check_connection(w3, args.chain_id)
        eth_rcpt, last_block = check_value_transfers(w3, args.chain_id, a0)
        token, deploy_r = check_deploy(w3, args.chain_id, a1, artifact)
        check_calls(token, a1.address)
        tok_rcpt, amount, xfer_hash, xfer_r = check_token_transfer(w3, args.chain_id, token, a1)
        last_block = max(last_block, deploy_r["blockNumber"], xfer_r["blockNumber"])
        check_logs(w3, token, deploy_r, a1.address, tok_rcpt, amount, xfer_hash, xfer_r)
        check_revert(w3, token, a1.address)
        check_tx_errors(w3, args.chain_id, a0)
        check_blocks(w3, xfer_hash, xfer_r)
        check_block_reads(w3, xfer_hash, xfer_r)
        check_filters(w3, args.chain_id, token, a1)
        check_fees(w3)
        check_storage(w3, token, a1.address)
        check_same_state(args.rpc, args.chain_id, last_block, [a0.address, eth_rcpt, a1.address], token,
                         [a1.address, tok_rcpt], w3)
        asyncio.run(ws_checks(ws_url, w3, args.chain_id, token, a1))
        if args.validator:
            check_staking_precompile(w3, args.chain_id, a2, to_checksum_address(args.validator))
    except Failure as e:
        print(f"FAIL: [{C.step}] {e}", flush=True)
        print(f"web3 interop: {C.passed} passed, 1 failed", flush=True)
        return 1
    except Exception as e:
        print(f"FAIL: [{C.step}] unexpected {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
        print(f"web3 interop: {C.passed} passed, 1 failed", flush=True)
        return 1
    print(f"web3 interop: {C.passed} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
