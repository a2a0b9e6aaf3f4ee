-- An S3 bucket grants access to everyone (an ACL grant to AllUsers or
-- AuthenticatedUsers, or a policy with Principal "*") and no public access
-- block stops it.
SELECT resource_key, resource_type, resource_id, account, region,
       'S3 bucket ' || resource_id || ' is public' AS summary
FROM resources_observed
WHERE resource_type = 'AWS::S3::Bucket'
  AND (supplementary_configuration LIKE '%acs.amazonaws.com/groups/global/AllUsers%'
       OR supplementary_configuration LIKE '%acs.amazonaws.com/groups/global/AuthenticatedUsers%'
       OR regexp_like(COALESCE(json_get_str(supplementary_configuration, 'BucketPolicy', 'policyText'), ''),
                      '"Principal"\s*:\s*(\{\s*"AWS"\s*:\s*)?"\*"'))
  AND NOT (COALESCE(json_get_bool(supplementary_configuration, 'PublicAccessBlockConfiguration', 'blockPublicAcls'), false)
           AND COALESCE(json_get_bool(supplementary_configuration, 'PublicAccessBlockConfiguration', 'ignorePublicAcls'), false)
           AND COALESCE(json_get_bool(supplementary_configuration, 'PublicAccessBlockConfiguration', 'blockPublicPolicy'), false)
           AND COALESCE(json_get_bool(supplementary_configuration, 'PublicAccessBlockConfiguration', 'restrictPublicBuckets'), false))
