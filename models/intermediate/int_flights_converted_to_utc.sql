{#- A table, not a view: five models and several tests read it, and each would redo its work. Incremental by
    month (macros/incremental_by_month.sql); one row per flight, so it reads only the flights it rebuilds. -#}
{#- The days, counted from the departure's local date, an arrival's clock time may fall on, earliest first (`final`
    says why these); each is a candidate arrival, converted and compared in the order given. -#}
{%- set arrival_day_shifts = [-1, 0, 1, 2] %}

with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        tail_number,
        flight_number,
        scheduled_dep_hhmm,
        scheduled_arr_hhmm,
        dep_delay_minutes,
        arr_delay_minutes,
        air_time_minutes,
        distance_miles,
        is_cancelled,
        is_diverted,
        flight_date,
        scheduled_departure_at_local,
        source_file,
        source_line,
        loaded_at
    from {{ ref('stg_bts__flights') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

airports as (

    select
        airport_code,
        iana_time_zone
    from {{ ref('airports') }}

),

stations as (

    select
        airport_code,
        station_id,
        lst_utc_offset_hours
    from {{ ref('airport_weather_stations') }}

),

scheduled as (

    select
        flights.*,
        airports.iana_time_zone as origin_time_zone,
        dest_airports.iana_time_zone as dest_time_zone,
        stations.station_id as origin_station_id,
        stations.lst_utc_offset_hours as origin_lst_utc_offset_hours,
        {#- BTS gives the arrival as a local clock time only; its date is chosen in `final`. The departure's
            local date is the flight date's day after for a departure at 24:00. -#}
        {{ flight_delays.hhmm_to_timestamp(
            'cast(flights.scheduled_departure_at_local as date)', 'flights.scheduled_arr_hhmm') }}
            as arrival_clock_on_departure_date_at_local
    from flights
    left join airports
        on flights.origin_airport_code = airports.airport_code
    left join airports as dest_airports
        on flights.dest_airport_code = dest_airports.airport_code
    left join stations
        on flights.origin_airport_code = stations.airport_code

),

-- the days, from the departure's local date, an arrival's clock time may fall on
arrival_days as (

    {% for day_shift in arrival_day_shifts -%}
        select {{ day_shift }} as day_shift
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

-- the arrivals' clock hours on the departures' local dates, per zone: few, shifted to each day below
arrival_clock_hours as (

    select distinct
        dest_time_zone,
        {{ dbt.date_trunc('hour', 'arrival_clock_on_departure_date_at_local') }} as arrival_clock_hour
    from scheduled

),

-- every local clock hour a departure or a possible arrival falls in, per zone
zone_hours as (

    select
        origin_time_zone as iana_time_zone,
        {{ dbt.date_trunc('hour', 'scheduled_departure_at_local') }} as local_hour
    from scheduled
    union
    select
        arrival_clock_hours.dest_time_zone as iana_time_zone,
        {{ flight_delays.add_interval('arrival_clock_hours.arrival_clock_hour', 'arrival_days.day_shift', 'day') }}
            as local_hour
    from arrival_clock_hours
    cross join arrival_days

),

-- a zone's offset from UTC for a whole local hour, to the second (local mean times before 1972 had seconds), when
-- it is the same at the hour's first and last minute (a zone changes its offset at most once an hour): each flight
-- then takes its zone's offset instead of a time-zone conversion of its own, which costs 25 CPU-seconds per 10M
-- flights on DuckDB. An hour whose offset changes inside it (Lord Howe Island's half-hour change) has no row, and
-- its flights are converted one by one.
zone_hour_offsets as (

    select
        iana_time_zone,
        local_hour,
        {{ dbt.datediff('local_hour', flight_delays.local_to_utc('local_hour', 'iana_time_zone'), 'second') }}
            as utc_minus_local_seconds
    from zone_hours
    where {{ dbt.datediff('local_hour', flight_delays.local_to_utc('local_hour', 'iana_time_zone'), 'second') }}
        = {{ dbt.datediff(
            flight_delays.add_minutes('local_hour', 59),
            flight_delays.local_to_utc(flight_delays.add_minutes('local_hour', 59), 'iana_time_zone'), 'second') }}

),

converted as (

    select
        scheduled.*,
        -- the arrival's clock time on each candidate day, in UTC
        {%- for day_shift in arrival_day_shifts %}
        {{ flight_delays.local_to_utc_by_hour_offset(
            flight_delays.add_interval('scheduled.arrival_clock_on_departure_date_at_local', day_shift, 'day'),
            'arrival_offsets_' ~ loop.index ~ '.utc_minus_local_seconds', 'scheduled.dest_time_zone') }}
                as arrival_candidate_{{ loop.index }}_at_utc,
        {%- endfor %}
        {{ flight_delays.local_to_utc_by_hour_offset('scheduled.scheduled_departure_at_local',
            'departure_offsets.utc_minus_local_seconds', 'scheduled.origin_time_zone') }} as scheduled_departure_at_utc
    from scheduled
    left join zone_hour_offsets as departure_offsets
        on scheduled.origin_time_zone = departure_offsets.iana_time_zone
        and {{ dbt.date_trunc('hour', 'scheduled.scheduled_departure_at_local') }} = departure_offsets.local_hour
    {%- for day_shift in arrival_day_shifts %}
        left join zone_hour_offsets as arrival_offsets_{{ loop.index }}
            on scheduled.dest_time_zone = arrival_offsets_{{ loop.index }}.iana_time_zone
            and {{ flight_delays.add_interval(
            dbt.date_trunc('hour', 'scheduled.arrival_clock_on_departure_date_at_local'), day_shift, 'day') }}
            = arrival_offsets_{{ loop.index }}.local_hour
    {%- endfor %}

),

-- The arrival is the first time its local clock reads the scheduled arrival after the departure (every scheduled
-- flight is shorter than a day, and the zones US flights cross are less than a day apart, so it falls between the
-- day before the departure's local date and two days after). Across time zones the clock time alone misleads: a
-- 55-minute hop from Atlanta to Birmingham leaves at 10:00 Eastern and lands at 09:55 Central, the same day; Guam
-- to Honolulu lands the local day before it left, and a late departure from Honolulu to Guam two days after.
final as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        origin_station_id,
        tail_number,
        origin_time_zone,
        source_file,
        flight_number,
        scheduled_dep_hhmm,
        scheduled_arr_hhmm,
        dep_delay_minutes,
        arr_delay_minutes,
        air_time_minutes,
        distance_miles,
        origin_lst_utc_offset_hours,
        source_line,
        is_cancelled,
        is_diverted,
        flight_date,
        scheduled_departure_at_local,
        loaded_at,
        scheduled_departure_at_utc,
        case
            {%- for day_shift in arrival_day_shifts %}
                {%- if not loop.last %}
                    when arrival_candidate_{{ loop.index }}_at_utc >= scheduled_departure_at_utc
                        then arrival_candidate_{{ loop.index }}_at_utc
                {%- else %}
                    else arrival_candidate_{{ loop.index }}_at_utc
                {%- endif %}
            {%- endfor %}
        end as scheduled_arrival_at_utc,
        {{ flight_delays.add_minutes('scheduled_departure_at_utc', -var('prediction_horizon_minutes')) }}
            as as_of_at_utc
    from converted

)

select * from final
