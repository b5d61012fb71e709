"""A period's values for the 2011 evaluation method, from a station's hourly uploads: the
SQL that averages them and the step from its row to the values `grade` takes. The grade API
and the partner report both grade days and months this way.

Per parameter, the period's mean is taken over its normal (N) and over-range (T) hours. A T
hour is at or above the analyser's limit, so a mean that includes one is a lower bound, and
is marked T: graded as "at least". Leaving T hours out would grade a spill day by its quiet
hours alone. A parameter with no N or T hour in the period (its analyser in maintenance, say,
all day) is passed on with one of its flags, so the grade lists it as left out and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.readings import AVERAGE_PARAMETERS, AverageValue

_MEASURED = "('N', 'T')"


def select_list(table: str = "") -> str:
    """The aggregate columns of one period, per parameter: its mean, whether any hour of the
    mean was over range, and a flag of its other hours. `table` qualifies the columns."""
    q = f"{table}." if table else ""
    return ", ".join(
        f"avg({q}{p}) FILTER (WHERE {q}{p}_flag IN {_MEASURED}) AS {p}, "
        f"coalesce(bool_or({q}{p}_flag = 'T'), false) AS {p}_over_range, "
        f"min({q}{p}_flag) FILTER (WHERE {q}{p}_flag NOT IN {_MEASURED}) AS {p}_other_flag"
        for p in AVERAGE_PARAMETERS
    )


def values_of(row: Mapping[str, Any]) -> dict[str, AverageValue]:
    """The values `grade` takes from a row of `select_list`."""
    values: dict[str, AverageValue] = {}
    for p in AVERAGE_PARAMETERS:
        if row[p] is not None:
            values[p] = AverageValue(float(row[p]), flag="T" if row[f"{p}_over_range"] else "N")
        elif row[f"{p}_other_flag"] is not None:
            values[p] = AverageValue(0.0, flag=row[f"{p}_other_flag"])  # no value: left out with its flag
    return values


def means_of(values: Mapping[str, AverageValue]) -> dict[str, float]:
    """The period's means as shown: measured parameters only."""
    return {p: v.avg for p, v in values.items() if v.flag in ("N", "T")}
