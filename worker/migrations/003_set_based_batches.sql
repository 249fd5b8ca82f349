-- asset-worker schema, version 3: a batch is stored by a fixed number of set-based statements.
--
-- asset_create_batch_v1 takes a batch as one array per field (values as the producer sent
-- them, as text) and decides every request in it, returning one row per position:
--
--   1. Requests that go alone, one by one through asset_create_checked_v1 (a subtransaction
--      each, the real SQLSTATE, constraint and message of a refusal):
--      - those the caller marks in p_alone: a uuid or an integer not in its plain form (its
--        cast might fail), a request_id already earlier in the batch (it resolves against the
--        first). A mark only routes: should the caller miss one, the set statement fails
--        and the batch runs one by one;
--      - with p_check, a request the schema's own constraints on assets would refuse: NOT
--        NULL, CHECK and foreign keys, read from the catalog at each call
--        (asset_refusal_predicate_v1), never copied here, so a constraint an operator adds is
--        obeyed from the next batch on. The check costs about a sixth of the batch: the caller
--        asks for it after a batch that held a refusal, and goes without while none come.
--        Without it a refusal fails the whole call, and the caller runs the batch again
--        with it.
--   2. Everything else in one statement: replays (request_id recorded), duplicates (an asset
--      with that (tenant_id, content_sha256) in the table, or inserted earlier by the same
--      statement), the new assets by one INSERT ... ON CONFLICT DO NOTHING that the schema
--      judges, and their asset_requests rows. No subtransaction.
--
-- A race: a request conflicting on assets_tenant_content_key with a row that was neither in the
-- table when the statement began nor inserted by it lost to another transaction. It is
-- returned as the unique violation (23505) it is, and the worker requeues it (SPEC 1); on its
-- retry the dedup lookup finds the winner.
--
-- If the set statement is refused after all (a value the plain-form test let through, a
-- constraint the predicate could not express), the call fails as a whole and the worker runs
-- the batch again request by request: slower, never wrong.

-- A request of the batch, typed. Its columns carry the names of assets' columns, so the
-- schema's CHECK expressions read it as they read a new row of assets.
CREATE TYPE asset_batch_row_v1 AS (
    idx              integer,
    request_id       uuid,
    id               uuid,
    tenant_id        uuid,
    folder_id        uuid,
    name             text,
    content_sha256   text,
    size_bytes       bigint,
    mime_type        text,
    storage_uri      text,
    metadata         jsonb,
    created_at       timestamptz,
    source_topic     text,
    source_partition integer,
    source_offset    bigint
);

-- What the batch's set statement decided for one request.
CREATE TYPE asset_batch_result_v1 AS (
    idx              integer,
    outcome          text,
    asset_id         uuid,
    error_sqlstate   text,
    error_constraint text,
    error_message    text
);

-- The constraints on assets as one boolean expression over a batch row `r`: true when
-- inserting it would be refused. Only constraints over columns a batch row has are included;
-- any other still applies, at the INSERT itself.
CREATE FUNCTION asset_refusal_predicate_v1() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    row_cols name[] := ARRAY(
        SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'asset_batch_row_v1'::regtype)
           AND a.attnum > 0 AND NOT a.attisdropped);
    terms text[] := '{}';
    c record;
BEGIN
    -- NOT NULL on what the request fills (a column with a default gets it).
    FOR c IN SELECT a.attname FROM pg_attribute a
              WHERE a.attrelid = 'assets'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attnotnull AND NOT a.atthasdef AND a.attname = ANY (row_cols)
              ORDER BY a.attnum LOOP
        terms := terms || format('r.%I IS NULL', c.attname);
    END LOOP;

    -- CHECK: the constraint's own expression; NULL passes, as it does for a CHECK.
    FOR c IN SELECT pg_get_expr(k.conbin, k.conrelid) AS expr FROM pg_constraint k
              WHERE k.conrelid = 'assets'::regclass AND k.contype = 'c'
                AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                 WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                                   AND NOT a.attname = ANY (row_cols))
              ORDER BY k.conname LOOP
        terms := terms || format('NOT COALESCE((%s), true)', c.expr);
    END LOOP;

    -- Foreign keys: the referenced row must exist unless a referencing column is NULL.
    FOR c IN SELECT k.confrelid::regclass AS ref,
                    ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                           ORDER BY u.i) AS cols,
                    ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                            JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n
                           ORDER BY u.i) AS refcols
               FROM pg_constraint k
              WHERE k.conrelid = 'assets'::regclass AND k.contype = 'f'
              ORDER BY k.conname LOOP
        IF NOT c.cols <@ row_cols THEN
            CONTINUE;
        END IF;
        -- A scalar subquery, so it stays one index probe per request (an EXISTS under OR
        -- may become a hash of the whole referenced table).
        terms := terms || format('(%s AND (SELECT true FROM %s x WHERE %s LIMIT 1) IS NULL)',
            (SELECT string_agg(format('r.%I IS NOT NULL', col), ' AND ') FROM unnest(c.cols) col),
            c.ref,
            (SELECT string_agg(format('x.%I = r.%I', rc, col), ' AND ')
               FROM unnest(c.refcols, c.cols) u(rc, col)));
    END LOOP;

    RETURN COALESCE(array_to_string(terms, ' OR '), 'false');
END
$$;

CREATE FUNCTION asset_create_batch_v1(
    p_request_id text[], p_tenant_id text[], p_folder_id text[], p_name text[],
    p_content_sha256 text[], p_size_bytes text[], p_mime_type text[], p_storage_uri text[],
    p_metadata text[], p_source_topic text[], p_source_partition integer[],
    p_source_offset bigint[], p_alone boolean[], p_check boolean)
RETURNS TABLE (r_idx integer, r_outcome text, r_asset_id uuid, r_sqlstate text,
               r_constraint text, r_message text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := COALESCE(array_length(p_request_id, 1), 0);
    batch asset_batch_row_v1[];
    alone integer[];
    refused integer[];
    total bigint := 0;
    results asset_batch_result_v1[];
    counted bigint;
BEGIN
    -- 1. Those the caller sends alone (p_alone: see the header), and the rest, typed.
    SELECT array_agg(u.i::integer ORDER BY u.i) INTO alone
      FROM unnest(p_alone) WITH ORDINALITY u(alone, i)
     WHERE COALESCE(u.alone, true);

    SELECT array_agg(ROW(u.i, u.rid::uuid, gen_random_uuid(), u.tid::uuid, u.fid::uuid, u.nm,
                         u.sha, u.sz::bigint, u.mt, u.uri, u.md::jsonb, now(), u.st, u.sp,
                         u.so)::asset_batch_row_v1
                     ORDER BY u.i)
      INTO batch
      FROM unnest(p_request_id, p_tenant_id, p_folder_id, p_name, p_content_sha256,
                  p_size_bytes, p_mime_type, p_storage_uri, p_metadata, p_source_topic,
                  p_source_partition, p_source_offset, p_alone)
           WITH ORDINALITY u(rid, tid, fid, nm, sha, sz, mt, uri, md, st, sp, so, alone, i)
     WHERE NOT COALESCE(u.alone, true);

    -- 2. With p_check, what the schema's constraints would refuse goes alone too.
    IF p_check THEN
        EXECUTE 'SELECT array_agg(r.idx) FROM unnest($1) r WHERE '
                || asset_refusal_predicate_v1()
           INTO refused USING batch;
    END IF;
    alone := COALESCE(alone, '{}') || COALESCE(refused, '{}');

    -- 3. The rest in one statement.
    WITH b AS (
        SELECT r.* FROM unnest(batch) r WHERE r.idx <> ALL (alone)),
    -- A lookup is one index probe per request, as a subquery: a join would let the planner
    -- scan a whole table for a batch of a few hundred.
    looked AS MATERIALIZED (
        SELECT b.*,
               (SELECT q.asset_id FROM asset_requests q WHERE q.request_id = b.request_id)
                   AS seen_id
          FROM b),
    seen AS (
        SELECT l.idx, l.seen_id AS asset_id FROM looked l WHERE l.seen_id IS NOT NULL),
    fresh AS (
        SELECT l.* FROM looked l WHERE l.seen_id IS NULL),
    ins AS (
        -- In key order, so two workers inserting overlapping batches wait, never deadlock.
        INSERT INTO assets (id, tenant_id, folder_id, name, content_sha256, size_bytes,
                            mime_type, storage_uri, metadata)
        SELECT f.id, f.tenant_id, f.folder_id, f.name, f.content_sha256, f.size_bytes,
               f.mime_type, f.storage_uri, f.metadata
          FROM fresh f ORDER BY f.tenant_id, f.content_sha256, f.idx
        ON CONFLICT ON CONSTRAINT assets_tenant_content_key DO NOTHING
        RETURNING assets.id, assets.tenant_id, assets.content_sha256),
    -- A request's row went in when its id came back; a request whose key went in with another
    -- request's row is that one's duplicate. Sorting the requests and the rows that went in
    -- together says so for all at once, in n log n: a join here would be planned blind (the
    -- planner guesses one row for a CTE) and become a nested loop, quadratic in the batch.
    marks AS (
        SELECT f.idx, f.request_id, f.source_topic, f.source_partition, f.source_offset,
               f.id, f.tenant_id, f.content_sha256, false AS went_in
          FROM fresh f
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, NULL, i.id, i.tenant_id, i.content_sha256, true
          FROM ins i),
    keyed AS (
        SELECT m.*,
               bool_or(m.went_in) OVER (PARTITION BY m.id) AS own_went_in,
               CASE WHEN bool_or(m.went_in) OVER k THEN
                    first_value(m.id) OVER (k ORDER BY m.went_in DESC) END AS key_id
          FROM marks m
        WINDOW k AS (PARTITION BY m.tenant_id, m.content_sha256)),
    -- A request whose row did not go in, nor another request's with its key, meets an asset
    -- already there: looked up only now, but in the statement's snapshot, so a row committed
    -- by a racing transaction since the statement began stays unseen (the race, below).
    settled AS (
        SELECT k.idx, k.request_id, k.source_topic, k.source_partition, k.source_offset,
               k.own_went_in, k.dup_id AS asset_id
          FROM (SELECT k.*,
                       CASE WHEN k.own_went_in THEN k.id
                            ELSE COALESCE(k.key_id,
                                          (SELECT a.id FROM assets a
                                            WHERE a.tenant_id = k.tenant_id
                                              AND a.content_sha256 = k.content_sha256)) END
                           AS dup_id
                  FROM keyed k WHERE k.idx IS NOT NULL) k),
    decided AS (
        SELECT s.*, CASE WHEN s.own_went_in THEN 'created'
                         WHEN s.asset_id IS NOT NULL THEN 'duplicate' END AS outcome
          FROM settled s),
    rec AS (
        INSERT INTO asset_requests (request_id, asset_id, outcome, source_topic,
                                    source_partition, source_offset)
        SELECT s.request_id, s.asset_id, s.outcome, s.source_topic, s.source_partition,
               s.source_offset
          FROM decided s WHERE s.outcome IS NOT NULL)
    SELECT array_agg(x) INTO results
      FROM (SELECT ROW(s.idx, s.outcome, s.asset_id,
                       CASE WHEN s.outcome IS NULL THEN '23505' END,
                       CASE WHEN s.outcome IS NULL THEN 'assets_tenant_content_key' END,
                       CASE WHEN s.outcome IS NULL THEN
                            'duplicate key value violates unique constraint "assets_tenant_content_key"'
                       END)::asset_batch_result_v1 AS x
              FROM decided s
            UNION ALL
            SELECT ROW(seen.idx, 'replayed', seen.asset_id, NULL, NULL,
                       NULL)::asset_batch_result_v1
              FROM seen) decided_rows;

    -- Without p_check, a duplicate was judged by NOT NULL and CHECK (the INSERT evaluates
    -- them before it finds the conflict), but not by the foreign keys, which only look at a
    -- row that goes in: the constraints' predicate judges the duplicates now, and any it
    -- refuses sends the whole batch back to be run with p_check.
    IF NOT p_check THEN
        SELECT array_agg(x.idx) INTO refused FROM unnest(results) x WHERE x.outcome = 'duplicate';
        IF refused IS NOT NULL THEN
            EXECUTE 'SELECT array_agg(r.idx) FROM unnest($1) r WHERE r.idx = ANY ($2) AND ('
                    || asset_refusal_predicate_v1() || ')'
               INTO refused USING batch, refused;
            IF refused IS NOT NULL THEN
                RAISE integrity_constraint_violation USING
                    MESSAGE = format('%s duplicate(s) in the batch would be refused by the schema; '
                                     'run it with the refusal check', cardinality(refused));
            END IF;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM unnest(results);
    GET DIAGNOSTICS counted = ROW_COUNT;
    total := counted;

    -- 4. Those that go alone, in batch order.
    RETURN QUERY
    SELECT k.i, c.outcome, c.asset_id, c.error_sqlstate, c.error_constraint, c.error_message
      FROM (SELECT i FROM unnest(alone) i ORDER BY i) k,
           LATERAL asset_create_checked_v1(p_request_id[k.i], p_tenant_id[k.i],
                                           p_folder_id[k.i], p_name[k.i],
                                           p_content_sha256[k.i], p_size_bytes[k.i],
                                           p_mime_type[k.i], p_storage_uri[k.i],
                                           p_metadata[k.i], p_source_topic[k.i],
                                           p_source_partition[k.i], p_source_offset[k.i]) c;
    GET DIAGNOSTICS counted = ROW_COUNT;
    total := total + counted;

    IF total <> n THEN
        RAISE EXCEPTION 'asset_create_batch_v1 decided % of % requests', total, n
            USING ERRCODE = 'internal_error';
    END IF;
END
$$;
