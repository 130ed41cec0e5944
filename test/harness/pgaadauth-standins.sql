-- ============================================================================================
-- TEST STAND-INS for Azure Database for PostgreSQL flexible server's Entra functions.
-- Azure's pgaadauth extension does not exist outside Azure. These functions have the same names,
-- argument types and result columns, so the operator's SQL runs unchanged against the harness.
-- They are NOT Azure's code and do not authenticate anything: the Azure emulator sets each
-- mapped role's password to the Entra token it issues (test/harness/azure-emulator).
--
-- Azure records the mapping as a security label (SECURITY LABEL FOR "pgaadauth" ON ROLE ... IS
-- 'aadauth,oid=<oid>,type=<type>'); labels need a C label provider, so the stand-ins keep the
-- same facts in the table pgaadauth_standin.principals instead.
-- Installed by the test harness into database "postgres" as a superuser.
--
-- azure_pg_admin. On Azure the server's Entra admins are members of azure_pg_admin (with
-- CREATEROLE and CREATEDB, not superusers), and "members of the azure_pg_admin role can manage
-- roles and access objects owned by any nonrestricted role, even if those roles are also members
-- of azure_pg_admin" (learn.microsoft.com/azure/postgresql/security/security-access-control,
-- "Improved control for azure_pg_admin"); azure_pg_admin itself is restricted (GRANT x TO
-- azure_pg_admin fails there). Azure builds that into the server; plain PostgreSQL cannot, so the
-- stand-ins model it with memberships, and differ from Azure exactly here:
--   * azure_pg_admin is made a member (INHERIT TRUE, SET FALSE) of each role it should manage:
--     every principal pgaadauth_create_principal_with_oid creates, and any other role the harness
--     hands to pgaadauth_standin.azure_pg_admin_manages() (an app's owner or migration role). Its
--     members then inherit what those roles own, so they may GRANT on those objects as the owner,
--     as on Azure. A role nobody handed over (created by a test as the superuser, and not passed
--     to that function) stays out of reach, where Azure would reach it.
--   * Roles that are members of azure_pg_admin themselves (other Entra admins) cannot be handed
--     over: PostgreSQL refuses circular memberships. On Azure their objects are reachable.
--   * Restricted roles: the harness superuser ("harness") stands for Azure's azuresu. Objects it
--     owns are out of the admin's reach, as azuresu's are on Azure: a GRANT on them fails with
--     42501, or (when the admin holds some privilege on them without grant option) succeeds with
--     WARNING 01007 "no privileges were granted" -- the case the operator must not take for done.
--   * The memberships show in pg_auth_members (azure_pg_admin as a member of app roles), which on
--     Azure they do not.
--
-- Validation against Microsoft Entra ID. Azure's pgaadauth_create_principal_with_oid checks the
-- object ID against Microsoft Graph and fails with XX000 ("Could not validate AAD user <oid>
-- because its name is not found in the tenant.") while a new identity is still replicating, when
-- the server cannot reach Entra, or for an object of the wrong type. The stand-in cannot ask
-- Graph: it accepts every object ID unless a test told it to refuse one, by inserting into
-- pgaadauth_standin.validation_faults as the superuser (see that table).
-- ============================================================================================
CREATE SCHEMA IF NOT EXISTS pgaadauth_standin;
COMMENT ON SCHEMA pgaadauth_standin IS 'TEST STAND-IN for Azure pgaadauth (entra-access harness); not Azure code';

CREATE TABLE IF NOT EXISTS pgaadauth_standin.principals (
  rolname name PRIMARY KEY,
  object_id text NOT NULL UNIQUE,
  object_type text NOT NULL CHECK (object_type IN ('user', 'group', 'service')),
  is_admin boolean NOT NULL,
  is_mfa boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS pgaadauth_standin.settings (tenant_id text NOT NULL);
-- TEST STAND-IN control: object IDs pgaadauth_create_principal_with_oid refuses, as Azure does
-- when it cannot validate one against Microsoft Graph. object_id '*' matches every object ID.
-- `mode` picks the failure: not_found (replication delay after the identity was created, or an
-- object of another tenant), wrong_type (the object is not a service principal), unreachable (the
-- server cannot reach Microsoft Entra ID). Refused until `until` (NULL: until the row is deleted).
-- Each refusal takes a number of pgaadauth_standin.validation_refusals, so a test can count them
-- (a sequence: the refusal rolls back everything else the call did).
CREATE TABLE IF NOT EXISTS pgaadauth_standin.validation_faults (
  object_id text PRIMARY KEY,
  mode text NOT NULL DEFAULT 'not_found' CHECK (mode IN ('not_found', 'wrong_type', 'unreachable')),
  until timestamptz
);
CREATE SEQUENCE IF NOT EXISTS pgaadauth_standin.validation_refusals;
REVOKE ALL ON SCHEMA pgaadauth_standin FROM PUBLIC;

DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'azure_pg_admin') THEN
    CREATE ROLE azure_pg_admin NOLOGIN;
  END IF;
END $$;

-- TEST STAND-IN (no Azure counterpart; see the header): hands `role_name` (NULL: every role it
-- can) to azure_pg_admin, so that its members may manage it and grant on what it owns, as Azure's
-- azure_pg_admin may for every non-restricted role. Restricted here: superusers (the stand-in for
-- azuresu), pg_* and azure_* roles, and members of azure_pg_admin (a circular membership).
-- Run by the harness as the superuser; returns the roles handed over.
CREATE OR REPLACE FUNCTION pgaadauth_standin.azure_pg_admin_manages(role_name name DEFAULT NULL)
RETURNS SETOF name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
BEGIN
  IF role_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
    RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = '42704';
  END IF;
  FOR r IN
    SELECT c.rolname FROM pg_roles c
     WHERE (role_name IS NULL OR c.rolname = role_name)
       AND NOT c.rolsuper
       AND c.rolname !~ '^(pg_|azure_)'
       AND NOT pg_has_role(c.oid, 'azure_pg_admin', 'MEMBER')
       AND NOT pg_has_role('azure_pg_admin', c.oid, 'MEMBER')
  LOOP
    EXECUTE format('GRANT %I TO azure_pg_admin WITH INHERIT TRUE, SET FALSE', r.rolname);
    RETURN NEXT r.rolname;
  END LOOP;
  IF role_name IS NOT NULL AND NOT FOUND THEN
    RAISE EXCEPTION 'role "%" is restricted in the stand-in (superuser, pg_*/azure_*, or an azure_pg_admin member)', role_name
      USING ERRCODE = '42501';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION pgaadauth_standin.azure_pg_admin_manages(name) FROM PUBLIC;

-- TEST STAND-IN: pgaadauth_create_principal_with_oid(roleName, objectId, objectType, isAdmin, isMfa)
CREATE OR REPLACE FUNCTION public.pgaadauth_create_principal_with_oid(
  roleName text, objectId text, objectType text, isAdmin boolean, isMfa boolean)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  caller name := session_user;
  fault text;
BEGIN
  -- Azure allows only an Entra administrator to create principals.
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = caller)
     AND NOT EXISTS (SELECT 1 FROM pgaadauth_standin.principals p WHERE p.rolname = caller AND p.is_admin) THEN
    RAISE EXCEPTION 'permission denied: only a Microsoft Entra administrator can create Entra principals (caller "%")', caller
      USING ERRCODE = '42501';
  END IF;
  IF objectType NOT IN ('user', 'group', 'service') THEN
    RAISE EXCEPTION 'invalid objectType "%": expected user, group or service', objectType USING ERRCODE = '22023';
  END IF;
  -- Azure validates the object ID against Microsoft Graph here; the stand-in refuses on demand.
  SELECT f.mode INTO fault FROM pgaadauth_standin.validation_faults f
   WHERE (f.object_id = objectId OR f.object_id = '*') AND (f.until IS NULL OR f.until > clock_timestamp())
   ORDER BY f.object_id = '*' LIMIT 1;
  IF fault IS NOT NULL THEN
    PERFORM nextval('pgaadauth_standin.validation_refusals');
    IF fault = 'wrong_type' THEN
      RAISE EXCEPTION 'Could not validate AAD user % because of an incorrect object type for "%"', objectId, objectType
        USING ERRCODE = 'XX000';
    ELSIF fault = 'unreachable' THEN
      RAISE EXCEPTION 'Could not validate AAD user %: an unexpected error occurred while trying to validate user', objectId
        USING ERRCODE = 'XX000';
    END IF;
    RAISE EXCEPTION 'Could not validate AAD user % because its name is not found in the tenant.', objectId
      USING ERRCODE = 'XX000';
  END IF;
  -- Azure's mapping is a label on the role and goes when the role is dropped; DROP ROLE fires no
  -- event trigger, so forget mappings of dropped roles here, before the uniqueness checks.
  DELETE FROM pgaadauth_standin.principals p WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p.rolname);
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = roleName) THEN
    RAISE EXCEPTION 'role "%" already exists', roleName USING ERRCODE = '42710';
  END IF;
  IF EXISTS (SELECT 1 FROM pgaadauth_standin.principals WHERE object_id = objectId) THEN
    RAISE EXCEPTION 'a principal with object id "%" already exists', objectId USING ERRCODE = '42710';
  END IF;
  EXECUTE format('CREATE ROLE %I WITH LOGIN', roleName);
  IF isAdmin THEN
    EXECUTE format('ALTER ROLE %I WITH CREATEROLE CREATEDB', roleName);
    EXECUTE format('GRANT azure_pg_admin TO %I WITH ADMIN OPTION', roleName);
  ELSE
    -- azure_pg_admin may manage every non-restricted role on Azure: model it (see the header).
    PERFORM pgaadauth_standin.azure_pg_admin_manages(roleName);
  END IF;
  -- A CREATEROLE admin who creates a role holds ADMIN OPTION on it (PostgreSQL 16+), which is
  -- what lets the operator later grant to it and drop it. SECURITY DEFINER runs as the function
  -- owner, so hand that option to the calling admin explicitly.
  IF caller <> roleName AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = caller) THEN
    EXECUTE format('GRANT %I TO %I WITH ADMIN OPTION, INHERIT FALSE, SET FALSE', roleName, caller);
  END IF;
  INSERT INTO pgaadauth_standin.principals (rolname, object_id, object_type, is_admin, is_mfa)
  VALUES (roleName, objectId, objectType, isAdmin, isMfa);
  RETURN format('Created role for "%s"', roleName);
END
$fn$;

-- TEST STAND-IN: pgaadauth_list_principals(isAdmin) — false lists every Entra role, true only admins.
CREATE OR REPLACE FUNCTION public.pgaadauth_list_principals(isAdmin boolean)
RETURNS TABLE (rolname name, "principalType" text, "objectId" text, "tenantId" text, "isMfa" boolean, "isAdmin" boolean)
LANGUAGE sql SECURITY DEFINER STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT p.rolname, p.object_type, p.object_id, (SELECT s.tenant_id FROM pgaadauth_standin.settings s LIMIT 1),
         p.is_mfa, p.is_admin
  FROM pgaadauth_standin.principals p
  JOIN pg_roles r ON r.rolname = p.rolname
  WHERE NOT isAdmin OR p.is_admin
  ORDER BY p.rolname
$fn$;
