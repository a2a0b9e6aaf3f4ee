-- A security group lets the whole internet (0.0.0.0/0 or ::/0) reach SSH (22)
-- or RDP (3389).
SELECT resource_key, resource_type, resource_id, account, region,
       CAST(port AS VARCHAR) AS path,
       'security group ' || resource_id || ' is open to the internet on port ' || CAST(port AS VARCHAR) AS summary
FROM (
  SELECT resource_key, resource_type, resource_id, account, region, permission, port
  FROM (
    SELECT resource_key, resource_type, resource_id, account, region,
           unnest(json_get_array(configuration, 'ipPermissions')) AS permission
    FROM resources_observed
    WHERE resource_type = 'AWS::EC2::SecurityGroup'
  ) p
  CROSS JOIN (VALUES (22), (3389)) AS admin(port)
) x
WHERE (json_get_str(permission, 'ipProtocol') = '-1'
       OR (json_get_int(permission, 'fromPort') <= port AND json_get_int(permission, 'toPort') >= port))
  AND (json_get_json(permission, 'ipv4Ranges') LIKE '%"0.0.0.0/0"%'
       OR json_get_json(permission, 'ipRanges') LIKE '%"0.0.0.0/0"%'
       OR json_get_json(permission, 'ipv6Ranges') LIKE '%"::/0"%')
