"""Check ``arithmetic-slip``: a stated calculation step in a worked solution has a wrong result.

Two kinds of steps are recomputed: calculator annotations ``<<16-3=13>>`` (as
in GSM8K solutions) and plain statements ``a op b [op c ...] = r`` in the text,
with ``+ - * / x × ÷``, decimals, thousands commas, currency signs and
percent, a unit word after a number (``1.389 kg × 159.7 g/mol = 219.5 g``)
and a fraction result when the expression has a fraction (``4 - 1/3 = 2/3``).
A stated result counts as right when it equals the computed value
rounded to the decimals it shows (``10/3 = 3.33`` is right, ``16 - 3 = 12`` is
not). The finding names the first wrong step; the approach around it may be
sound or not, so it does not explain the failure fully.
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

from atlas_builder.diagnose.checks.base import Finding, Row, output_evidence

_ANNOTATION = re.compile(r"<<(?P<expr>[^<>=]{1,200})=(?P<result>[^<>=]{1,60})>>")
_NUM = r"[-−]?(?:[$€£]\s?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"
_OP = r"(?:[+\-−*/×÷]|\s[xX]\s)"
#: A unit after a number: one short word, optionally per another ("kg", "g/mol", "pages/day"); not the "x" operator.
_UNIT = r"(?:\s?(?![xX]\b)[A-Za-zµ°]{1,10}(?:/[A-Za-z]{1,10})?(?![\w/]))"
_FRACTION = r"[-−]?\d+/\d+"
# NOTE: _STATEMENT tries a match at every number of an output and is the largest cost of the checks;
# anchoring the scan at each "=" would cut it.
_STATEMENT = re.compile(
    rf"(?P<expr>{_NUM}{_UNIT}?(?:\s*{_OP}\s*{_NUM}{_UNIT}?)+)\s*=\s*(?P<result>{_FRACTION}(?![\d/.,])|{_NUM})"
    r"(?![\d,]*\d|\.\d|\s*[/*×÷^(]|\s*[+\-−]\s*\d|\s?[xX]\s)"
)
_UNIT_IN_EXPR = re.compile(rf"(?<=[\d%]){_UNIT}")
_BEFORE_EXPR = re.compile(r"[.^*/+\-−×÷(<>≈]\s*$|\s[xX]\s*$|[\w.^(]$")
_DIGIT = re.compile(r"\d")
_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class NotArithmetic(ValueError):
    """Raised when a step is not plain arithmetic the check can recompute."""


def _to_python(expr: str, percent_as_fraction: bool) -> str:
    text = expr.replace("−", "-").replace("×", "*").replace("÷", "/").replace(",", "")
    text = re.sub(r"\s[xX]\s", " * ", text)
    text = _UNIT_IN_EXPR.sub("", text)
    text = re.sub(r"[$€£]\s?", "", text)
    text = re.sub(r"(\d+(?:\.\d+)?)%", r"(\1/100)" if percent_as_fraction else r"\1", text)
    return text


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Div) and right == 0:
            raise NotArithmetic("division by zero")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = _evaluate(node.left), _evaluate(node.right)
        if exponent.denominator != 1 or abs(exponent) > 64:
            raise NotArithmetic("unsupported power")
        return base ** int(exponent)
    raise NotArithmetic(f"unsupported expression element {type(node).__name__}")


def evaluate(expr: str, percent_as_fraction: bool = True) -> Fraction:
    """Compute an arithmetic expression exactly; raise ``NotArithmetic`` for anything else."""
    try:
        tree = ast.parse(_to_python(expr, percent_as_fraction).strip(), mode="eval")
    except (SyntaxError, ValueError) as error:
        raise NotArithmetic(str(error)) from error
    return _evaluate(tree)


def parse_result(text: str) -> tuple[Fraction, int] | None:
    """Return a stated result's value and the number of decimals it shows, or None."""
    cleaned = re.sub(r"[$€£,\s]", "", text.replace("−", "-")).rstrip(".")
    fraction = re.fullmatch(r"(-?\d+)/(\d+)", cleaned)
    if fraction is not None and int(fraction.group(2)) != 0:
        return Fraction(int(fraction.group(1)), int(fraction.group(2))), 12  # exact: compared to 12 decimals
    match = re.fullmatch(r"(-?\d+(?:\.(\d+))?)(%?)", cleaned)
    if match is None:
        return None
    decimals = len(match.group(2) or "")
    return Fraction(match.group(1)), decimals


def result_is_right(computed: Fraction, stated: Fraction, decimals: int) -> bool:
    """Return whether ``stated`` equals ``computed`` rounded or cut to ``decimals`` places."""
    if computed == stated:
        return True
    if decimals > 6:
        # Calculator output such as 2.4000000000000004 carries binary floating-point noise.
        return abs(computed - stated) <= abs(computed) * Fraction(1, 10**9) + Fraction(1, 10**decimals)
    step = Fraction(1, 10**decimals)
    difference = abs(computed - stated)
    if difference <= step / 2:
        return True
    # Cut instead of rounded (10/3 = 3.33, 7/2 = 3 people): the stated value lies within one step below.
    if computed.denominator != 1 and 0 <= abs(computed) - abs(stated) < step and (computed >= 0) == (stated >= 0):
        return True
    return False


def _step_is_right(expr: str, result: str) -> tuple[bool, Fraction, Fraction] | None:
    """Return (right, computed, stated) for one step, or None when the step is not plain arithmetic."""
    parsed = parse_result(result)
    if parsed is None:
        return None
    stated, decimals = parsed
    result_has_percent = result.strip().endswith("%")
    candidates = []
    for percent_as_fraction in ((False, True) if "%" in expr else (True,)):
        try:
            computed = evaluate(expr, percent_as_fraction)
        except (NotArithmetic, OverflowError, ZeroDivisionError, RecursionError):
            continue
        candidates.append(computed)
        if result_is_right(computed, stated, decimals):
            return True, computed, stated
        if result_has_percent and result_is_right(computed * 100, stated, decimals):
            return True, computed, stated
    if not candidates:
        return None
    return False, candidates[0], stated


def find_slips(output: str) -> list[dict]:
    """Return every wrong step in ``output`` in text order, as dicts with span, expression and values."""
    slips = []
    if "=" not in output:
        return slips  # every step the check reads has an equals sign
    pieces = []
    previous = 0
    for match in _ANNOTATION.finditer(output):
        verdict = _step_is_right(match["expr"], match["result"])
        pieces.extend((output[previous: match.start()], " " * (match.end() - match.start())))
        previous = match.end()
        if verdict is not None and not verdict[0]:
            slips.append({"start": match.start(), "end": match.end(), "expression": match["expr"].strip(),
                          "stated": match["result"].strip(), "computed": verdict[1], "source": "annotation"})
    pieces.append(output[previous:])
    masked = "".join(pieces)
    for match in _STATEMENT.finditer(masked):
        if "/" in match["result"] and "/" not in match["expr"]:
            continue  # a rate ("= 60/hour") or a date, not a fraction result
        if _BEFORE_EXPR.search(masked[max(0, match.start() - 3): match.start()]):
            continue  # part of a longer expression (a power, a variable, an earlier operator) the check cannot see whole
        verdict = _step_is_right(match["expr"], match["result"])
        if verdict is not None and not verdict[0]:
            slips.append({"start": match.start(), "end": match.end(), "expression": match["expr"].strip(),
                          "stated": match["result"].strip(), "computed": verdict[1], "source": "statement"})
    slips.sort(key=lambda slip: slip["start"])
    return slips


def _show(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


def check_arithmetic(row: Row) -> Finding | None:
    """Report the first step of the output whose stated result differs from the recomputed one."""
    if "=" not in row.output or _DIGIT.search(row.output) is None:
        return None
    slips = find_slips(row.output)
    if not slips:
        return None
    first = slips[0]
    computed = _show(first["computed"])
    return Finding(
        title="Arithmetic slip",
        summary=f"The step “{first['expression']} = {first['stated']}” is wrong: {first['expression']} is {computed}.",
        evidence=(output_evidence(row.output, first["start"], first["end"]),),
        explains_fully=False,
        details={
            "expression": first["expression"],
            "stated": first["stated"],
            "computed": computed,
            "source": first["source"],
            "wrong_steps": len(slips),
        },
    )
