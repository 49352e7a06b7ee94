// SPDX-License-Identifier: Apache-2.0
// IoCollector against a real block device: a loop device over a file, a
// child that writes a known number of bytes with O_DIRECT, and an untracked
// writer that must not be counted.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

#include "bpf_support.h"
#include "child_workload.h"
#include "io.h"

namespace vmtide::collectors {
namespace {

// A loop device over a sparse file in /tmp, detached and removed at the end.
class LoopDevice {
 public:
  explicit LoopDevice(std::size_t bytes) {
    char path[] = "/tmp/vmtide-io-test.XXXXXX";
    backing_fd_ = mkstemp(path);
    if (backing_fd_ < 0) return;
    backing_ = path;
    if (ftruncate(backing_fd_, static_cast<off_t>(bytes)) != 0) return;
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
      error_ = std::string("/dev/loop-control: ") + std::strerror(errno);
      return;
    }
    // Another process (a parallel test) can bind the device we were told is
    // free before we do: LOOP_SET_FD then fails with EBUSY; ask again.
    for (int attempt = 0; attempt < 20 && !ok_; ++attempt) {
      const int n = ioctl(ctl, LOOP_CTL_GET_FREE);
      if (n < 0) {
        error_ = std::string("LOOP_CTL_GET_FREE: ") + std::strerror(errno);
        break;
      }
      dev_ = "/dev/loop" + std::to_string(n);
      if (loop_fd_ >= 0) close(loop_fd_);
      loop_fd_ = open(dev_.c_str(), O_RDWR | O_CLOEXEC);
      if (loop_fd_ >= 0 && ioctl(loop_fd_, LOOP_SET_FD, backing_fd_) == 0) {
        ok_ = true;
      } else {
        error_ = dev_ + ": " + std::strerror(errno);
        if (errno != EBUSY) break;
      }
    }
    close(ctl);
  }
  ~LoopDevice() {
    if (loop_fd_ >= 0) {
      if (ok_) ioctl(loop_fd_, LOOP_CLR_FD, 0);
      close(loop_fd_);
    }
    if (backing_fd_ >= 0) close(backing_fd_);
    if (!backing_.empty()) unlink(backing_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& dev() const { return dev_; }

 private:
  std::string backing_, dev_, error_;
  int backing_fd_ = -1, loop_fd_ = -1;
  bool ok_ = false;
};

// A child that, on "go", writes `bytes` to `dev` with O_DIRECT in 1 MiB
// chunks and syncs.
testsupport::ChildWorkload direct_writer(const std::string& dev, std::size_t bytes) {
  return testsupport::ChildWorkload([] { return static_cast<void*>(nullptr); },
                                    [dev, bytes](void*) {
                                      int fd = open(dev.c_str(), O_WRONLY | O_DIRECT);
                                      void* buf = nullptr;
                                      constexpr std::size_t kChunk = 1 << 20;
                                      if (fd < 0 || posix_memalign(&buf, 4096, kChunk) != 0) _exit(2);
                                      std::memset(buf, 0x5a, kChunk);
                                      for (std::size_t done = 0; done < bytes; done += kChunk) {
                                        if (write(fd, buf, kChunk) != static_cast<ssize_t>(kChunk)) _exit(3);
                                      }
                                      fdatasync(fd);
                                      close(fd);
                                    });
}

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status st = bpf::preflight(); !st) GTEST_SKIP() << "cannot load BPF here: " << st.error().message();
    loop_ = std::make_unique<LoopDevice>(64u << 20);
    if (!loop_->ok()) GTEST_SKIP() << "no loop device here: " << loop_->error();
    auto c = IoCollector::create();
    ASSERT_TRUE(c) << c.error().message();
    io_ = std::move(c).value();
  }
  std::unique_ptr<LoopDevice> loop_;
  std::unique_ptr<IoCollector> io_;
};

TEST_F(IoTest, DirectWritesAreCountedExactly) {
  constexpr std::size_t kBytes = 32u << 20;
  auto w = direct_writer(loop_->dev(), kBytes);
  ASSERT_TRUE(w.ready());
  ASSERT_TRUE(io_->track("vm", w.pid()));
  ASSERT_TRUE(w.run());
  auto r = io_->read();
  ASSERT_TRUE(r) << r.error().message();
  const IoDelta& d = r->at("vm");
  std::printf("wrote %zu bytes: wr_bytes=%llu wr_ops=%llu rd_bytes=%llu\n", kBytes,
              static_cast<unsigned long long>(d.wr_bytes), static_cast<unsigned long long>(d.wr_ops),
              static_cast<unsigned long long>(d.rd_bytes));
  EXPECT_NEAR(static_cast<double>(d.wr_bytes), kBytes, 0.02 * kBytes);
  // Requests are at most a few MiB and at least one page.
  EXPECT_GE(d.wr_ops, kBytes / (8u << 20));
  EXPECT_LE(d.wr_ops, kBytes / 4096);
  const std::uint64_t hist_total = std::accumulate(d.lat_hist.begin(), d.lat_hist.end(), std::uint64_t{0});
  EXPECT_EQ(hist_total, d.wr_ops + d.rd_ops) << "every completed request has a latency";
  // A second read covers nothing new.
  auto again = io_->read();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->at("vm").wr_bytes, 0u);
}

TEST_F(IoTest, UntrackedWriterIsNotCountedAndNothingLeaks) {
  auto tracked = direct_writer(loop_->dev(), 1u << 20);
  auto other = direct_writer(loop_->dev(), 8u << 20);
  ASSERT_TRUE(tracked.ready() && other.ready());
  ASSERT_TRUE(io_->track("vm", tracked.pid()));
  ASSERT_TRUE(other.run());
  auto r = io_->read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("vm").wr_bytes, 0u) << "another process's writes were attributed to the VM";
  ASSERT_TRUE(tracked.run());
  r = io_->read();
  ASSERT_TRUE(r);
  EXPECT_NEAR(static_cast<double>(r->at("vm").wr_bytes), 1u << 20, 0.02 * (1u << 20));
  ASSERT_TRUE(io_->untrack("vm"));
  auto n = io_->kernel_tracked_entries();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_FALSE(io_->untrack("vm"));
}

}  // namespace
}  // namespace vmtide::collectors
