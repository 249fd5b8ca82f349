-- asset-worker schema, version 1. Table and column names are the contract (SPEC section 3);
-- constraint names are part of it too: they travel in x-error-constraint.

CREATE TABLE tenants (
    id   uuid PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE folders (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL CONSTRAINT folders_tenant_fkey REFERENCES tenants,
    name      text NOT NULL,
    -- Target of assets_folder_fkey: a folder is only usable by its own tenant.
    CONSTRAINT folders_id_tenant_key UNIQUE (id, tenant_id)
);

CREATE TABLE assets (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL CONSTRAINT assets_tenant_fkey REFERENCES tenants,
    folder_id      uuid,
    name           text NOT NULL
                   CONSTRAINT assets_name_length CHECK (char_length(name) BETWEEN 1 AND 1024),
    content_sha256 text NOT NULL
                   CONSTRAINT assets_content_sha256_format CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes     bigint NOT NULL
                   CONSTRAINT assets_size_bytes_nonnegative CHECK (size_bytes >= 0),
    mime_type      text,
    storage_uri    text NOT NULL,
    metadata       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- The dedup key: two workers racing on the same content meet here (23505).
    CONSTRAINT assets_tenant_content_key UNIQUE (tenant_id, content_sha256),
    -- MATCH SIMPLE: no check when folder_id is NULL.
    CONSTRAINT assets_folder_fkey FOREIGN KEY (folder_id, tenant_id)
        REFERENCES folders (id, tenant_id)
);

CREATE TABLE asset_requests (
    request_id       uuid PRIMARY KEY,
    asset_id         uuid NOT NULL CONSTRAINT asset_requests_asset_fkey REFERENCES assets,
    outcome          text NOT NULL
                     CONSTRAINT asset_requests_outcome CHECK (outcome IN ('created', 'duplicate')),
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    processed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX asset_requests_asset_id_idx ON asset_requests (asset_id);

-- One request, decided in one statement of the caller's transaction:
--   replayed  request_id already recorded: nothing changes;
--   duplicate an asset with this (tenant_id, content_sha256) exists: link to it;
--   created   a new asset.
-- No exception handler on purpose: an error must reach the worker with its SQLSTATE and
-- constraint, and a handler would open a subtransaction per call.
CREATE FUNCTION asset_create_v1(
    p_request_id uuid, p_tenant_id uuid, p_folder_id uuid, p_name text,
    p_content_sha256 text, p_size_bytes bigint, p_mime_type text, p_storage_uri text,
    p_metadata jsonb, p_source_topic text, p_source_partition integer, p_source_offset bigint,
    OUT outcome text, OUT asset_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    inserted uuid;
BEGIN
    SELECT r.asset_id INTO asset_id FROM asset_requests r WHERE r.request_id = p_request_id;
    IF FOUND THEN
        outcome := 'replayed';
        RETURN;
    END IF;

    SELECT a.id INTO asset_id FROM assets a
     WHERE a.tenant_id = p_tenant_id AND a.content_sha256 = p_content_sha256;
    IF FOUND THEN
        -- A duplicate must still be a valid request: the schema judges it as it would a new
        -- asset. NOT NULL and CHECK constraints are evaluated before ON CONFLICT looks at the
        -- unique key, so this raises their SQLSTATE and constraint name, and otherwise does
        -- nothing (the row exists). Foreign keys are only checked for inserted rows, so the
        -- folder is checked here by hand under the same constraint name.
        INSERT INTO assets (tenant_id, folder_id, name, content_sha256, size_bytes, mime_type,
                            storage_uri, metadata)
        VALUES (p_tenant_id, p_folder_id, p_name, p_content_sha256, p_size_bytes, p_mime_type,
                p_storage_uri, p_metadata)
        ON CONFLICT ON CONSTRAINT assets_tenant_content_key DO NOTHING
        RETURNING id INTO inserted;
        IF inserted IS NOT NULL THEN
            -- The row found above was deleted meanwhile: this is a new asset after all.
            asset_id := inserted;
            outcome := 'created';
        ELSIF p_folder_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM folders f WHERE f.id = p_folder_id AND f.tenant_id = p_tenant_id) THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('insert or update on table "assets" violates foreign key constraint "%s"',
                                 'assets_folder_fkey'),
                DETAIL = format('Key (folder_id, tenant_id)=(%s, %s) is not present in table "folders".',
                                p_folder_id, p_tenant_id),
                CONSTRAINT = 'assets_folder_fkey', TABLE = 'assets', SCHEMA = current_schema();
        ELSE
            outcome := 'duplicate';
        END IF;
    ELSE
        INSERT INTO assets (tenant_id, folder_id, name, content_sha256, size_bytes, mime_type,
                            storage_uri, metadata)
        VALUES (p_tenant_id, p_folder_id, p_name, p_content_sha256, p_size_bytes, p_mime_type,
                p_storage_uri, p_metadata)
        RETURNING id INTO asset_id;
        outcome := 'created';
    END IF;

    INSERT INTO asset_requests (request_id, asset_id, outcome, source_topic, source_partition,
                                source_offset)
    VALUES (p_request_id, asset_id, outcome, p_source_topic, p_source_partition, p_source_offset);
END
$$;
