-- An EBS volume is not encrypted at rest.
SELECT resource_key, resource_type, resource_id, account, region,
       'EBS volume ' || resource_id || ' is not encrypted' AS summary
FROM resources_observed
WHERE resource_type = 'AWS::EC2::Volume'
  AND json_get_bool(configuration, 'encrypted') = false
