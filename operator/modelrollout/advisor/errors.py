"""The one error type the advisor raises for bad input.

Every problem a person can fix (an unreadable log, a missing column, a nonsense cost) becomes an
`AdvisorError` with a one-line message naming what is wrong and what was expected, so the CLI can
print it without a traceback and the operator can put it into a condition verbatim.
"""

from __future__ import annotations


class AdvisorError(ValueError):
    """Bad input to the advisor; the message is meant for the person who supplied it."""


def from_validation_error(err, *, names: dict[str, str] | None = None) -> AdvisorError:
    """One line from a pydantic ValidationError: `name: problem (got value)`, first problem only.

    `names` maps field names to what the person typed (e.g. CLI flags), so the message points at
    the flag rather than at an internal field.
    """
    first = err.errors()[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    field = ".".join(str(part) for part in first.get("loc", ()))
    if not field:
        return AdvisorError(message)
    label = (names or {}).get(field, field)
    return AdvisorError(f"{label}: {message} (got {first.get('input')!r})")
