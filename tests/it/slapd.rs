//! A private OpenLDAP server for the tests: own directory, own port, TLS on
//! ldaps:// with a test CA, seeded with people and groups through ldapadd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PW: &str = "adminpw";

/// Points `config` at `url` with the service account and the people and
/// groups bases of this directory.
pub fn point_config_at(config: &mut gatehouse::config::Config, url: &str) {
    config.ldap.url = Some(url.to_owned());
    config.ldap.bind_dn = Some(ADMIN_DN.into());
    config.ldap.bind_password = Some(gatehouse::config::Secret::new(ADMIN_PW));
    config.ldap.user_base = format!("ou=people,{SUFFIX}");
    config.ldap.group_base = format!("ou=groups,{SUFFIX}");
}

pub struct Slapd {
    pub url: String,
    pub ldaps_url: String,
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files.
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gatehouse test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).expect("write ca");
    std::fs::write(&cert, server_cert.pem()).expect("write cert");
    std::fs::write(&key, server_key.serialize_pem()).expect("write key");
    (ca, cert, key)
}

impl Slapd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("slapd dir");
        let root = dir.path();
        let (ca_file, cert, key) = test_pki(root);
        let hash = Command::new("slappasswd")
            .args(["-s", ADMIN_PW])
            .output()
            .expect("slappasswd runs");
        let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
        let config = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {root}/slapd.pid\n\
             olcTLSCertificateFile: {cert}\nolcTLSCertificateKeyFile: {key}\n\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
             include: file:///etc/ldap/schema/core.ldif\n\n\
             include: file:///etc/ldap/schema/cosine.ldif\n\n\
             include: file:///etc/ldap/schema/nis.ldif\n\n\
             include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
             dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\nolcSizeLimit: unlimited\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
             olcDatabase: {{1}}mdb\nolcSuffix: {SUFFIX}\nolcRootDN: {ADMIN_DN}\nolcRootPW: {hash}\n\
             olcDbDirectory: {root}/db\nolcDbMaxSize: 1073741824\nolcSizeLimit: unlimited\n\
             olcDbIndex: objectClass eq\nolcDbIndex: uid eq\nolcDbIndex: member eq\n\
             olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none\n\
             olcAccess: {{1}}to * by users read by anonymous auth\n",
            root = root.display(),
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(root.join("config.ldif"), config).expect("config.ldif");
        std::fs::create_dir_all(root.join("slapd.d")).expect("slapd.d");
        std::fs::create_dir_all(root.join("db")).expect("db");
        let loaded = Command::new("slapadd")
            .args(["-n", "0", "-F"])
            .arg(root.join("slapd.d"))
            .arg("-l")
            .arg(root.join("config.ldif"))
            .output()
            .expect("slapadd runs");
        assert!(
            loaded.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_url = format!("ldaps://127.0.0.1:{tls_port}");
        let started = Command::new("slapd")
            .args(["-h", &format!("{url}/ {ldaps_url}/"), "-F"])
            .arg(root.join("slapd.d"))
            .output()
            .expect("slapd runs");
        assert!(
            started.status.success(),
            "slapd: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        let slapd = Self {
            url,
            ldaps_url,
            ca_file,
            dir,
        };
        for _ in 0..100 {
            let probe = Command::new("ldapwhoami")
                .args(["-x", "-H", &slapd.url, "-D", ADMIN_DN, "-w", ADMIN_PW])
                .output();
            if probe.is_ok_and(|o| o.status.success()) {
                slapd.ldif(&format!("dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
                    dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
                    dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"));
                return slapd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slapd did not answer on {}", slapd.url);
    }

    /// Applies LDIF with ldapmodify (`changetype` lines allowed; plain entries are added).
    pub fn ldif(&self, ldif: &str) {
        let path = self.dir.path().join("change.ldif");
        std::fs::write(&path, ldif).expect("ldif file");
        let out = Command::new("ldapmodify")
            .args([
                "-a", "-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, "-f",
            ])
            .arg(&path)
            .output()
            .expect("ldapmodify runs");
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// LDIF of a person `uid` with password `password`.
    pub fn person(uid: &str, given: &str, surname: &str, password: &str) -> String {
        format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {surname}\n\
             givenName: {given}\nsn: {surname}\nmail: {uid}@example.org\ntelephoneNumber: +1 555 0100\n\
             o: Example Org\nuserPassword: {password}\n\n"
        )
    }

    /// LDIF of a group `cn` with `members` (uids).
    pub fn group(cn: &str, members: &[&str]) -> String {
        let mut ldif =
            format!("dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n");
        for uid in members {
            ldif.push_str(&format!("member: uid={uid},ou=people,{SUFFIX}\n"));
        }
        ldif + "\n"
    }

    pub fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("slapd.pid"))
            .ok()
            .map(|p| p.trim().to_owned())
    }

    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(&pid).status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
