with

carriers as (

    select
        carrier_code,
        carrier_name
    from {{ ref('carriers') }}

),

final as (

    select
        carrier_code,
        carrier_name
    from carriers

)

select * from final
