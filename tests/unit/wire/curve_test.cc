// SPDX-License-Identifier: Apache-2.0
// CURVE key files (vmtide/wire/curve.h): what keygen writes parses back (and
// is TOML), every malformed file is an error naming its line, a secret key
// readable by others is refused with the fix, files are created with the
// right modes and never overwritten by accident, and a loopback CURVE pair
// of sockets talks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <toml++/toml.h>
#include <zmq.hpp>

#include "vmtide/wire/curve.h"
#include "vmtide/wire/zap.h"

namespace vmtide::wire::curve {
namespace {

// A valid public key (the server key from libzmq's zmq_curve(7) example).
constexpr const char* kPub = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vmtide-curve.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(CurveKeys, CurveIsAvailable) { ASSERT_TRUE(available()) << "libzmq built without libsodium"; }

TEST(CurveKeys, KeygenOutputParsesBackAndIsToml) {
  auto k = generate();
  ASSERT_TRUE(k) << k.error().message();
  EXPECT_EQ(k->public_z85.size(), kZ85Chars);
  EXPECT_EQ(k->secret_z85.size(), kZ85Chars);

  auto sec = parse_key_file(format_secret_file(*k), "a.key");
  ASSERT_TRUE(sec) << sec.error().message();
  EXPECT_EQ(sec->public_z85, k->public_z85);
  ASSERT_TRUE(sec->secret_z85.has_value());
  EXPECT_EQ(*sec->secret_z85, k->secret_z85);

  auto pub = parse_key_file(format_public_file(*k), "a.pub");
  ASSERT_TRUE(pub) << pub.error().message();
  EXPECT_EQ(pub->public_z85, k->public_z85);
  EXPECT_FALSE(pub->secret_z85.has_value());

  // Other tools can read the files with any TOML parser.
  toml::table t = toml::parse(format_secret_file(*k));
  EXPECT_EQ(t["public-key"].value<std::string>(), k->public_z85);
  EXPECT_EQ(t["secret-key"].value<std::string>(), k->secret_z85);
  toml::table p = toml::parse(format_public_file(*k));
  EXPECT_EQ(p["public-key"].value<std::string>(), k->public_z85);
  EXPECT_FALSE(p.contains("secret-key"));
}

TEST(CurveKeys, SecretAloneDerivesThePublicKey) {
  auto k = generate();
  ASSERT_TRUE(k);
  auto f = parse_key_file("secret-key = '" + k->secret_z85 + "'  # literal string\n", "s.key");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->public_z85, k->public_z85);
}

TEST(CurveKeys, MalformedFilesAreNamedByLine) {
  auto k = generate();
  ASSERT_TRUE(k);
  auto other = generate();
  ASSERT_TRUE(other);
  const std::string pub = "public-key = \"" + k->public_z85 + "\"\n";
  struct Case {
    std::string text;
    const char* want;
  };
  const Case cases[] = {
      {"", "t.key: no public-key or secret-key"},
      {"# only a comment\n", "no public-key or secret-key"},
      {"public-key = \"abc\"\n", "t.key:1: 'public-key' must be 40 Z85 characters, got 3"},
      {"\n" + std::string("public-key = \"") + std::string(39, 'a') + "\\\"\n", "t.key:2:"},
      {"public-key = \"" + std::string(39, 'a') + "~\"\n", "'~', which is not a Z85 character"},
      {"public-key = " + k->public_z85 + "\n", "t.key:1: 'public-key' must be a quoted string"},
      {"public-key = \"" + k->public_z85 + "\n", "unterminated string"},
      {"public-key = \"" + k->public_z85 + "\" x\n", "unexpected text after the value"},
      {pub + pub, "t.key:2: 'public-key' appears twice"},
      {pub + "curve = \"x\"\n", "t.key:2: unknown key 'curve' (known: public-key, secret-key)"},
      {"[curve]\n", "t.key:1: expected"},
      {"public-key = \"" + other->public_z85 + "\"\nsecret-key = \"" + k->secret_z85 + "\"\n",
       "the public-key does not belong to the secret-key"},
  };
  for (const auto& c : cases) {
    auto r = parse_key_file(c.text, "t.key");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_NE(r.error().context.find(c.want), std::string::npos) << r.error().context;
  }
}

TEST(CurveKeys, SecretFileModeAndOwnerRule) {
  const std::string f = "/etc/vmtide/agent.key";
  EXPECT_TRUE(check_secret_file(f, S_IFREG | 0600, 1000, 1000));
  EXPECT_TRUE(check_secret_file(f, S_IFREG | 0400, 1000, 1000));
  EXPECT_TRUE(check_secret_file(f, S_IFREG | 0600, 0, 1000)) << "root's files are trusted";

  Status open = check_secret_file(f, S_IFREG | 0644, 1000, 1000);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code, Errc::kPermission);
  EXPECT_EQ(open.error().context,
            "secret key file /etc/vmtide/agent.key has mode 0644: group or others may read or change it; "
            "fix: chmod 600 /etc/vmtide/agent.key");
  for (mode_t m : {0640, 0604, 0620, 0602, 0610, 0601}) {
    EXPECT_FALSE(check_secret_file(f, S_IFREG | m, 1000, 1000)) << std::oct << m;
  }

  Status owner = check_secret_file(f, S_IFREG | 0600, 1001, 1000);
  ASSERT_FALSE(owner);
  EXPECT_NE(owner.error().context.find("belongs to uid 1001"), std::string::npos) << owner.error().context;
  EXPECT_NE(owner.error().context.find("fix: chown 1000 /etc/vmtide/agent.key"), std::string::npos);

  Status dir = check_secret_file(f, S_IFDIR | 0700, 1000, 1000);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().context.find("is not a regular file"), std::string::npos);
}

TEST(CurveKeys, LoadsSecretKeyFilesOnlyWhenPrivate) {
  TempDir dir;
  auto k = generate();
  ASSERT_TRUE(k);
  const std::string key = dir / "agent.key";
  write_file(key, format_secret_file(*k), 0600);
  auto ok = load_secret_key_file(key);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->public_z85, k->public_z85);
  EXPECT_EQ(ok->secret_z85, k->secret_z85);

  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  auto open = load_secret_key_file(key);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code, Errc::kPermission);
  EXPECT_NE(open.error().context.find(key + " has mode 0644"), std::string::npos) << open.error().context;
  EXPECT_NE(open.error().context.find("chmod 600 " + key), std::string::npos);

  const std::string pub = dir / "agent.pub";
  write_file(pub, format_public_file(*k), 0644);
  auto wrong_file = load_secret_key_file(pub);
  ASSERT_FALSE(wrong_file);
  EXPECT_NE(wrong_file.error().context.find("holds no secret-key (a .pub file?"), std::string::npos)
      << wrong_file.error().context;

  auto missing = load_secret_key_file(dir / "nope.key");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_NE(missing.error().context.find("nope.key"), std::string::npos);

  auto not_file = load_secret_key_file(dir / ".");
  ASSERT_FALSE(not_file);
  EXPECT_NE(not_file.error().context.find("is not a regular file"), std::string::npos);

  const std::string damaged = dir / "damaged.key";
  write_file(damaged, "secret-key = \"short\"\n", 0600);
  auto bad = load_secret_key_file(damaged);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("damaged.key:1: 'secret-key' must be 40 Z85 characters"), std::string::npos)
      << bad.error().context;

  // Someone else's file, even private, is not ours to trust (needs root to
  // give a file away).
  if (geteuid() == 0) {
    ASSERT_EQ(chmod(key.c_str(), 0600), 0);
    ASSERT_EQ(chown(key.c_str(), 65534, 65534), 0);
    auto foreign = load_secret_key_file(key);
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().context.find("belongs to uid 65534"), std::string::npos) << foreign.error().context;
  }
}

TEST(CurveKeys, PublicKeyFromFileOrZ85) {
  TempDir dir;
  auto k = generate();
  ASSERT_TRUE(k);
  const std::string pub = dir / "agent.pub";
  write_file(pub, format_public_file(*k), 0644);
  auto from_file = load_public_key(pub);
  ASSERT_TRUE(from_file) << from_file.error().message();
  EXPECT_EQ(*from_file, k->public_z85);
  auto from_string = load_public_key(k->public_z85);
  ASSERT_TRUE(from_string) << from_string.error().message();
  EXPECT_EQ(*from_string, k->public_z85);

  auto neither = load_public_key(dir / "agent.pbu");
  ASSERT_FALSE(neither);
  EXPECT_NE(neither.error().context.find("neither an existing key file"), std::string::npos);
  auto bad_z85 = load_public_key(std::string(39, 'a') + "~");
  ASSERT_FALSE(bad_z85);
  EXPECT_NE(bad_z85.error().context.find("not a Z85 character"), std::string::npos);
}

TEST(CurveKeys, WritesFilesWithTheirModesWhateverTheUmask) {
  for (mode_t umask_value : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    TempDir dir;
    const mode_t old = umask(umask_value);
    auto k = generate();
    ASSERT_TRUE(k);
    Status st = write_key_files(dir / "agent", *k, false);
    umask(old);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(mode_of(dir / "agent.key"), 0600u) << "umask " << std::oct << umask_value;
    EXPECT_EQ(mode_of(dir / "agent.pub"), 0644u) << "umask " << std::oct << umask_value;
    auto back = load_secret_key_file(dir / "agent.key");
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->secret_z85, k->secret_z85);
  }
}

TEST(CurveKeys, RefusesToOverwriteUnlessForced) {
  TempDir dir;
  auto first = generate();
  auto second = generate();
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  ASSERT_TRUE(write_key_files(dir / "agent", *first, false));
  const std::string key_before = read_file(dir / "agent.key");

  Status again = write_key_files(dir / "agent", *second, false);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().context.find("agent.key already exists"), std::string::npos) << again.error().context;
  EXPECT_NE(again.error().context.find("--force"), std::string::npos);
  EXPECT_EQ(read_file(dir / "agent.key"), key_before);

  // Only the .pub is left over: still a refusal, and no .key is written.
  std::filesystem::remove(dir / "agent.key");
  Status half = write_key_files(dir / "agent", *second, false);
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().context.find("agent.pub already exists"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "agent.key"));

  // --force replaces both, and a .key someone had widened comes back 0600:
  // the new file is created private, not the old one truncated.
  write_file(dir / "agent.key", key_before, 0644);
  ASSERT_TRUE(write_key_files(dir / "agent", *second, true));
  EXPECT_EQ(mode_of(dir / "agent.key"), 0600u);
  EXPECT_EQ(mode_of(dir / "agent.pub"), 0644u);
  auto back = load_secret_key_file(dir / "agent.key");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->secret_z85, second->secret_z85);
  EXPECT_EQ(*load_public_key(dir / "agent.pub"), second->public_z85);
  // No temporaries left beside them.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "")) files += e.is_regular_file();
  EXPECT_EQ(files, 2);

  Status suffix = write_key_files(dir / "agent.key", *second, true);
  ASSERT_FALSE(suffix);
  EXPECT_NE(suffix.error().context.find("give the prefix without '.key'"), std::string::npos);
}

// A CURVE server and client on loopback TCP (CURVE does not apply to
// inproc): the client with the server's public key gets the message.
TEST(CurveSockets, ClientWithTheServerKeyReceives) {
  auto server_keys = generate();
  ASSERT_TRUE(server_keys);
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(configure_server(pub, *server_keys));
  pub.bind("tcp://127.0.0.1:*");
  const std::string ep = pub.get(zmq::sockopt::last_endpoint);

  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  Status st = configure_subscriber(sub, server_keys->public_z85, "");
  ASSERT_TRUE(st) << st.error().message();
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(ep);

  // The subscription reaches the XPUB only after the handshake succeeded.
  zmq::message_t frame;
  pub.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(pub.recv(frame)) << "no subscription through CURVE";
  ASSERT_TRUE(pub.send(zmq::str_buffer("hello"), zmq::send_flags::none));
  sub.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(sub.recv(frame));
  EXPECT_EQ(frame.to_string(), "hello");
}

TEST(CurveSockets, SubscriberOptionsAreChecked) {
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  EXPECT_TRUE(configure_subscriber(sub, "", "")) << "no keys: a plain socket";
  Status client_only = configure_subscriber(sub, "", "/etc/vmtide/me.key");
  ASSERT_FALSE(client_only);
  EXPECT_NE(client_only.error().context.find("--server-key"), std::string::npos);
  EXPECT_FALSE(configure_subscriber(sub, "not-a-key", ""));
  EXPECT_FALSE(configure_subscriber(sub, kPub, "/nonexistent/me.key"));
  EXPECT_TRUE(configure_subscriber(sub, kPub, "")) << "an ephemeral client keypair";
}

}  // namespace
}  // namespace vmtide::wire::curve

// The allow-list (vmtide/wire/zap.h): keys as Z85, files and directories
// of .pub files, each trusted only if others cannot write it.
namespace vmtide::wire::curve {
namespace {

TEST(CurveAllowList, ZapHandlerAdmitsOnlyListedKeys) {
  auto server = generate();
  auto listed = generate();
  auto other = generate();
  ASSERT_TRUE(server && listed && other);
  zmq::context_t ctx;
  auto zap = ZapHandler::start(ctx, {listed->public_z85});
  ASSERT_TRUE(zap) << zap.error().message();
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(configure_server(pub, *server));
  pub.bind("tcp://127.0.0.1:*");
  const std::string ep = pub.get(zmq::sockopt::last_endpoint);
  auto sub_with = [&](const KeyPair& client) {
    zmq::socket_t s(ctx, zmq::socket_type::sub);
    s.set(zmq::sockopt::linger, 0);
    EXPECT_TRUE(configure_client(s, server->public_z85, client));
    s.set(zmq::sockopt::subscribe, "");
    s.connect(ep);
    return s;
  };
  // The refused client connects first: if the handler admitted it, its
  // subscription would be the first the XPUB reads.
  zmq::socket_t refused = sub_with(*other);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*zap)->refused() == 0 && std::chrono::steady_clock::now() < deadline) {
    zmq::message_t none;
    pub.set(zmq::sockopt::rcvtimeo, 50);
    EXPECT_FALSE(pub.recv(none)) << "a subscription through an unlisted key";
  }
  EXPECT_GE((*zap)->refused(), 1u);
  EXPECT_EQ((*zap)->admitted(), 0u);
  zmq::socket_t admitted = sub_with(*listed);
  zmq::message_t frame;
  pub.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(pub.recv(frame)) << "no subscription from the listed client";
  EXPECT_EQ((*zap)->admitted(), 1u);
  ASSERT_TRUE(pub.send(zmq::str_buffer("hello"), zmq::send_flags::none));
  admitted.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(admitted.recv(frame));
  EXPECT_EQ(frame.to_string(), "hello");
  refused.set(zmq::sockopt::rcvtimeo, 200);
  EXPECT_FALSE(refused.recv(frame)) << "the unlisted client received";
}

TEST(CurveAllowList, LoadsKeysFilesAndDirectories) {
  TempDir dir;
  auto a = generate();
  auto b = generate();
  ASSERT_TRUE(a && b);
  ASSERT_EQ(mkdir((dir / "clients").c_str(), 0755), 0);
  write_file(dir / "clients/a.pub", format_public_file(*a), 0644);
  write_file(dir / "clients/README", "not a key", 0644);
  write_file(dir / "b.pub", format_public_file(*b), 0644);
  auto keys = load_allowed_clients({dir / "clients", dir / "b.pub", kPub});
  ASSERT_TRUE(keys) << keys.error().message();
  EXPECT_EQ(*keys, (std::set<std::string>{a->public_z85, b->public_z85, kPub}));

  EXPECT_FALSE(load_allowed_clients({}));
  EXPECT_FALSE(load_allowed_clients({dir / "missing.pub"}));
  ASSERT_EQ(mkdir((dir / "empty").c_str(), 0755), 0);
  auto empty = load_allowed_clients({dir / "empty"});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().context.find("no .pub file"), std::string::npos) << empty.error().context;

  ASSERT_EQ(chmod((dir / "b.pub").c_str(), 0664), 0);
  auto group_writable = load_allowed_clients({dir / "b.pub"});
  ASSERT_FALSE(group_writable);
  EXPECT_EQ(group_writable.error().code, Errc::kPermission);
  ASSERT_EQ(chmod((dir / "clients").c_str(), 0757), 0);
  EXPECT_FALSE(load_allowed_clients({dir / "clients"}));
}

TEST(CurveAllowList, TrustRule) {
  EXPECT_TRUE(check_trust_file("/k", S_IFREG | 0644, 1000, 1000));
  EXPECT_TRUE(check_trust_file("/k", S_IFDIR | 0755, 0, 1000));
  EXPECT_FALSE(check_trust_file("/k", S_IFREG | 0664, 1000, 1000));
  EXPECT_FALSE(check_trust_file("/k", S_IFREG | 0646, 1000, 1000));
  EXPECT_FALSE(check_trust_file("/k", S_IFREG | 0644, 1001, 1000));
}

}  // namespace
}  // namespace vmtide::wire::curve
