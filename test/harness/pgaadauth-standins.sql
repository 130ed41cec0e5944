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
REVOKE ALL ON SCHEMA pgaadauth_standin FROM PUBLIC;

DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'azure_pg_admin') THEN
    CREATE ROLE azure_pg_admin NOLOGIN;
  END IF;
END $$;

-- TEST STAND-IN: pgaadauth_create_principal_with_oid(roleName, objectId, objectType, isAdmin, isMfa)
CREATE OR REPLACE FUNCTION public.pgaadauth_create_principal_with_oid(
  roleName text, objectId text, objectType text, isAdmin boolean, isMfa boolean)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  caller name := session_user;
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
