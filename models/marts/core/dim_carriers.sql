{#- Unknown members: a carrier code that appears in the flights but not in the carriers seed gets an
    inferred row, so every fact row joins and reports show the code instead of dropping the flights. -#}
with

carriers as (

    select
        carrier_code,
        carrier_name
    from {{ ref('carriers') }}

),

flight_carriers as (

    select distinct carrier_code
    from {{ ref('stg_bts__flights') }}

),

inferred as (

    select
        flight_carriers.carrier_code,
        'Unknown carrier ' || flight_carriers.carrier_code as carrier_name
    from flight_carriers
    left join carriers
        on flight_carriers.carrier_code = carriers.carrier_code
    where carriers.carrier_code is null

),

final as (

    select
        carrier_code,
        carrier_name,
        false as is_inferred_member
    from carriers

    union all

    select
        carrier_code,
        carrier_name,
        true as is_inferred_member
    from inferred

)

select * from final
