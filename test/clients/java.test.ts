// docs/aks-guide.md's Java snippet (pgjdbc + HikariCP + azure-identity-extensions' authentication
// plugin), run as written in the world's pod: the plugin's DefaultAzureCredential reaches
// WorkloadIdentityCredential and MSAL4J, whose instance discovery goes to
// login.microsoftonline.com, which is the emulator inside the sandbox. The JVM trusts the harness
// CA through its cacerts (javaTrust), as the snippet's DefaultJavaSSLFactory asks.
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientWorld, expectAppAnswer, podSandbox, toolchain } from './context.ts';
import { guideSnippet } from './snippets.ts';
import { installJava, JAVA_POM, type JavaToolchain } from './toolchains/java.ts';

const ctx = clientWorld();

/** groupId:artifactId → version, for each <dependency> in an XML text. */
function dependencies(xml: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const [, body] of xml.matchAll(/<dependency>([\s\S]*?)<\/dependency>/g)) {
    const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body!)?.[1]?.trim() ?? '';
    found.set(`${field('groupId')}:${field('artifactId')}`, field('version'));
  }
  return found;
}

// The test app's logger is not something the guide asks for.
const TEST_ONLY = new Set(['org.slf4j:slf4j-simple']);

describe('Java: the dependencies docs/aks-guide.md lists', () => {
  it('are the artifacts and versions the test runs with (test/clients/java/pom.xml)', () => {
    const documented = dependencies(guideSnippet('java-dependencies').code);
    const tested = dependencies(readFileSync(JAVA_POM, 'utf8'));
    for (const name of TEST_ONLY) tested.delete(name);
    expect(Object.fromEntries(documented), 'the java-dependencies block and the pom differ').toEqual(
      Object.fromEntries(tested),
    );
  });
});

/** The snippet as the body of a main method, then the app's two queries and its answer. */
function javaApp(snippet: string, grantedTable: string, ungrantedTable: string): string {
  return `import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import org.postgresql.util.PSQLException;

public class App {
  public static void main(String[] args) throws Exception {
    // docs/aks-guide.md, <!-- snippet: java -->, as written:
${snippet}
    // The app's work: the granted table read, the other refused by the server.
    int granted = 0;
    try (Connection c = dataSource.getConnection();
        Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT * FROM ${grantedTable}")) {
      while (r.next()) granted++;
    }
    String refused = null;
    try (Connection c = dataSource.getConnection(); Statement s = c.createStatement()) {
      s.executeQuery("SELECT * FROM ${ungrantedTable}");
    } catch (PSQLException e) {
      // The server's own message, without the driver's "ERROR: " and position decoration.
      refused = e.getServerErrorMessage() != null ? e.getServerErrorMessage().getMessage() : e.getMessage();
    } catch (SQLException e) {
      refused = e.getMessage();
    }
    dataSource.close();
    System.out.println("{\\"granted\\": " + granted + ", \\"refused\\": " + json(refused) + "}");
  }

  static String json(String s) {
    if (s == null) return "null";
    StringBuilder out = new StringBuilder("\\"");
    for (char ch : s.toCharArray()) {
      if (ch == '"' || ch == '\\\\') out.append('\\\\').append(ch);
      else if (ch < 0x20) out.append(String.format("\\\\u%04x", (int) ch));
      else out.append(ch);
    }
    return out.append('"').toString();
  }
}
`;
}

describe.skipIf(!ctx)('Java: pgjdbc with azure-identity-extensions, as docs/aks-guide.md shows it', () => {
  let java: JavaToolchain | undefined;
  let unavailable: string | undefined;
  beforeAll(async () => {
    unavailable = await toolchain('Java (JDK, Maven, test/clients/java/pom.xml)', async () => {
      java = await installJava();
    });
  });

  it('reads the granted table and is refused the other', async (test) => {
    if (unavailable) return test.skip(unavailable);
    const { info, world } = ctx!;
    const snippet = guideSnippet('java');
    const dir = await mkdtemp(join(info.dir, 'java-app-'));
    await writeFile(join(dir, 'App.java'), javaApp(snippet.code, world.grantedTable, world.ungrantedTable));
    const sandbox = await podSandbox(info, world, { javaTrust: true });
    // One JVM: the source launcher compiles App.java in memory and runs it.
    const result = await sandbox.run(java!.java, ['-cp', java!.classPath, 'App.java'], { cwd: dir });
    expectAppAnswer(result, world);
  });
});
