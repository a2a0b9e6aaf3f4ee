-- More than 5% of an account's spend (EffectiveCost, over the cost data
-- loaded) lacks one of the required tags: the FinOps target is 95% tagged.
SELECT 'aws/' || account || '/-/AWS::Account/' || account AS resource_key,
       'AWS::Account' AS resource_type, account AS resource_id, account, '-' AS region,
       'untagged spend is ' || CAST(ROUND(100 * untagged / total, 1) AS VARCHAR) || '% of account '
         || account || ' (' || CAST(ROUND(untagged, 2) AS VARCHAR) || ' of ' || CAST(ROUND(total, 2) AS VARCHAR) || ')' AS summary
FROM (
  SELECT SubAccountId AS account,
         SUM(EffectiveCost) AS total,
         SUM(CASE WHEN NOT array_has_all(c.x_TagKeys, r.keys) THEN EffectiveCost ELSE 0 END) AS untagged
  -- The one-row side first: DataFusion buffers a CROSS JOIN's left side.
  FROM (SELECT array_agg(tag_key) AS keys FROM required_tags) r
  CROSS JOIN focus_data_table c
  WHERE SubAccountId IS NOT NULL
  GROUP BY SubAccountId
) s
WHERE total > 0 AND untagged / total > 0.05
