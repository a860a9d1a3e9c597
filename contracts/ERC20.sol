// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Harmony Test Token
/// @notice A minimal ERC-20 used by the appliance's EVM / JSON-RPC interop tests.
/// @dev Storage layout (relied on by appliance/tests/interop/web3_interop.py via eth_getStorageAt):
///   slot 0: mapping(address => uint256) balanceOf
///   slot 1: mapping(address => mapping(address => uint256)) allowance
///   slot 2: uint256 totalSupply
/// name, symbol and decimals are constants and occupy no storage.
contract ERC20 {
    string public constant name = "Harmony Test Token";
    string public constant symbol = "HTT";
    uint8 public constant decimals = 18;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 initialSupply) {
        totalSupply = initialSupply;
        balanceOf[msg.sender] = initialSupply;
        emit Transfer(address(0), msg.sender, initialSupply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        require(spender != address(0), "ERC20: approve to the zero address");
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 current = allowance[from][msg.sender];
        if (current != type(uint256).max) {
            require(current >= value, "ERC20: insufficient allowance");
            unchecked {
                allowance[from][msg.sender] = current - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function _transfer(address from, address to, uint256 value) private {
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 fromBalance = balanceOf[from];
        require(fromBalance >= value, "ERC20: transfer amount exceeds balance");
        unchecked {
            // Cannot underflow (checked above) nor overflow (sum of balances == totalSupply).
            balanceOf[from] = fromBalance - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
