-- Every resource that can carry tags carries each tag [finops] required_tags
-- names (`team` and `env` when none are configured).
SELECT o.resource_key, o.resource_type, o.resource_id, o.account, o.region,
       r.tag_key AS path,
       o.resource_type || ' ' || o.resource_id || ' lacks the required tag ' || r.tag_key AS summary
-- The few keys first: DataFusion buffers a CROSS JOIN's left side.
FROM required_tags r
CROSS JOIN resources_observed o
WHERE o.tags LIKE '{%'
  AND NOT array_has(o.tag_keys, r.tag_key)
