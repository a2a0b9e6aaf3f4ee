-- The FOCUS use-case library's example queries (focus.finops.org/use-cases)
-- that are portable SQL over the specification's own column names, as
-- published. Each is run unchanged by tests/finops.rs, its `?` bound in
-- order to the literals on its params line. Left out: those written in
-- MySQL's dialect (MONTH(), JSON_EXTRACT, Tags["…"]) and those whose text
-- does not match the specification (InvoiceID, InvoiceIssuer, a table
-- named focus_data_tabl, an ORDER BY on an alias never defined or on a
-- column neither grouped nor aggregated).

-- costs-service-category
-- params: '2024-09-01' | '2024-10-01'
SELECT ProviderName,
       BillingCurrency,
       BillingPeriodStart,
       ServiceCategory,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  and BillingPeriodEnd <= ?
GROUP BY ProviderName,
         BillingCurrency,
         BillingPeriodStart,
         ServiceCategory
ORDER BY TotalBilledCost DESC

-- report-costs-by-service-category-and-subcategory
-- params: '2024-09-01' | '2024-10-02'
SELECT ProviderName,
       BillingCurrency,
       BillingPeriodStart,
       ServiceCategory,
       ServiceSubcategory,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  and BillingPeriodEnd < ?
GROUP BY ProviderName,
         BillingCurrency,
         BillingPeriodStart,
         ServiceCategory,
         ServiceSubcategory
ORDER BY TotalBilledCost DESC

-- analyze-service-costs-by-region
-- params: '2024-09-01' | '2024-10-02'
SELECT ChargePeriodStart,
       ProviderName,
       RegionId,
       ServiceName,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ChargePeriodStart,
         ProviderName,
         RegionId,
         ServiceName
ORDER BY ChargePeriodStart,
         SUM(EffectiveCost) DESC

-- resource-component-costs
-- params: '2024-09-01' | '2024-10-02' | 'arn:aws:rds:eu-west-1:123456789012:db:prod-orders'
SELECT ResourceId,
       ResourceName,
       ResourceType,
       ChargeDescription,
       SkuId,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND ResourceId = ?
GROUP BY ResourceId,
         ResourceName,
         ResourceType,
         ChargeDescription,
         SkuId

-- report-spending-across-billing-periods-by-service-category
-- params: '2024-09-01' | '2024-10-02' | 'AWS'
SELECT ProviderName,
       BillingAccountName,
       BillingAccountId,
       BillingCurrency,
       BillingPeriodStart,
       ServiceCategory,
       ServiceName,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
  AND ProviderName = ?
GROUP BY ProviderName,
         BillingAccountName,
         BillingAccountId,
         BillingCurrency,
         BillingPeriodStart,
         ServiceCategory,
         ServiceName
ORDER BY TotalBilledCost DESC

-- corrections-by-subaccount
-- params: '2024-09-01' | '2024-10-02'
-- may be empty: the demo has no corrections
SELECT ProviderName,
       BillingAccountId,
       ServiceCategory,
       SubAccountId,
       SubAccountName,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodEnd < ?
  AND ChargeClass = 'Correction'
GROUP BY ProviderName,
         BillingAccountId,
         SubAccountId,
         SubAccountName,
         ServiceCategory

-- recurring-commitment-charges
-- params: '2024-09-01' | '2024-10-02'
-- may be empty: the demo has no commitment discounts
SELECT BillingPeriodStart,
       CommitmentDiscountId,
       CommitmentDiscountName,
       CommitmentDiscountType,
       ChargeFrequency,
       SUM(BilledCost) AS TotalBilledCost
FROM focus_data_table
WHERE BillingPeriodStart >= ?
  AND BillingPeriodStart < ?
  AND ChargeFrequency = 'Recurring'
  AND CommitmentDiscountId IS NOT NULL
GROUP BY BillingPeriodStart,
         CommitmentDiscountId,
         CommitmentDiscountName,
         CommitmentDiscountType,
         ChargeFrequency

-- analyze-capacity-reservations-on-compute-costs
-- params: '2024-09-01' | '2024-10-02'
SELECT CASE
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Unused' THEN 'Unused Capacity Reservation'
           WHEN CapacityReservationId IS NOT NULL
                AND CapacityReservationStatus = 'Used' THEN 'Compute using Capacity Reservation'
           ELSE 'Compute without Capacity Reservation'
       END AS Status,
       ProviderName,
       BillingAccountId,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND ServiceCategory = 'Compute'
GROUP BY ProviderName,
         BillingAccountId,
         CapacityReservationId,
         CapacityReservationStatus

-- identify-unused-capacity-reservations
-- params: '2024-09-01' | '2024-10-02'
-- may be empty: the demo has no capacity reservations
SELECT ProviderName,
       BillingAccountId,
       CapacityReservationId,
       CapacityReservationStatus,
       SUM(BilledCost) AS TotalBilledCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  AND ChargePeriodEnd < ?
  AND CapacityReservationStatus = 'Unused'
GROUP BY ProviderName,
         BillingAccountId,
         CapacityReservationId,
         CapacityReservationStatus

-- analyze-the-different-metered-costs-for-a-particular-sku
-- params: '2024-09-01' | '2024-10-02'
SELECT ProviderName,
       ChargePeriodStart,
       ChargePeriodEnd,
       SkuId,
       SkuPriceId,
       PricingUnit,
       ListUnitPrice,
       SUM(PricingQuantity) AS TotalPricingQuantity,
       SUM(ListCost) AS TotalListCost,
       SUM(EffectiveCost) AS TotalEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ProviderName,
         ChargePeriodStart,
         ChargePeriodEnd,
         SkuId,
         SkuPriceId,
         PricingUnit,
         ListUnitPrice
ORDER BY ChargePeriodStart ASC
LIMIT 100

-- analyze-effective-cost-by-pricing-currency
-- params: '2024-09-01' | '2024-10-02'
SELECT ProviderName,
       PublisherName,
       ServiceName,
       PricingCurrency,
       SUM(PricingCurrencyEffectiveCost) AS TotalPricingCurrencyEffectiveCost
FROM focus_data_table
WHERE ChargePeriodStart >= ?
  and ChargePeriodEnd < ?
GROUP BY ProviderName,
         PublisherName,
         ServiceName,
         PricingCurrency

-- verify-service-charges
-- params: '2024-09-01' | '2024-10-02'
SELECT ProviderName, BillingAccountId, BillingAccountName, BillingCurrency, ServiceName, SUM(BilledCost) AS TotalBilledCost FROM focus_data_table WHERE BillingPeriodStart >= ? AND BillingPeriodEnd < ? GROUP BY ProviderName, BillingAccountName, BillingAccountId, BillingCurrency, ServiceName
