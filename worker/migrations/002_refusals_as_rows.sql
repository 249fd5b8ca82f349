-- asset-worker schema, version 2: a request the schema refuses no longer aborts its batch.
--
-- asset_create_checked_v1 takes the message's values as text (so a bad uuid or number is
-- refused here, not by the caller's casts), runs asset_create_v1, and returns an integrity
-- (23) or data (22) error as a row instead of raising it: the worker settles that request
-- alone while the rest of the batch commits. Every other error (transient ones such as a
-- deadlock or a cancelled statement, or anything unexpected) still aborts the transaction.
--
-- The exception block is a subtransaction per request; PostgreSQL caches 64 subtransaction
-- ids per transaction (PGPROC_MAX_CACHED_SUBXIDS), beyond which every session pays, so the
-- worker's batches are at most 64 requests (postgres.batch_size).
CREATE FUNCTION asset_create_checked_v1(
    p_request_id text, p_tenant_id text, p_folder_id text, p_name text,
    p_content_sha256 text, p_size_bytes text, p_mime_type text, p_storage_uri text,
    p_metadata text, p_source_topic text, p_source_partition integer, p_source_offset bigint,
    OUT outcome text, OUT asset_id uuid,
    OUT error_sqlstate text, OUT error_constraint text, OUT error_message text)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.outcome, c.asset_id INTO outcome, asset_id
      FROM asset_create_v1(p_request_id::uuid, p_tenant_id::uuid, p_folder_id::uuid, p_name,
                           p_content_sha256, p_size_bytes::bigint, p_mime_type, p_storage_uri,
                           p_metadata::jsonb, p_source_topic, p_source_partition,
                           p_source_offset) c;
EXCEPTION
    WHEN integrity_constraint_violation OR data_exception THEN
        GET STACKED DIAGNOSTICS error_sqlstate = RETURNED_SQLSTATE,
                                error_constraint = CONSTRAINT_NAME,
                                error_message = MESSAGE_TEXT;
        outcome := NULL;
        asset_id := NULL;
END
$$;
