// Starts and stops a real s5vector-node child process on a loopback port (tests and benchmarks).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char **environ;

namespace s5v::test {

class NodeProcess {
public:
	NodeProcess() = default;
	NodeProcess(const NodeProcess &) = delete;
	NodeProcess &operator=(const NodeProcess &) = delete;
	~NodeProcess() { Stop(); }

	// Spawns `binary --listen 127.0.0.1:0 --store dir extra...` and waits for the announced port.
	bool Start(const std::string &binary, const std::string &store, const std::vector<std::string> &extra = {}) {
		std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0", "--store", store};
		args.insert(args.end(), extra.begin(), extra.end());
		std::vector<char *> argv;
		for (auto &a : args)
			argv.push_back(a.data());
		argv.push_back(nullptr);
		int fds[2];
		if (pipe(fds) != 0)
			return false;
		posix_spawn_file_actions_t actions;
		posix_spawn_file_actions_init(&actions);
		posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
		posix_spawn_file_actions_addclose(&actions, fds[0]);
		int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
		posix_spawn_file_actions_destroy(&actions);
		close(fds[1]);
		if (rc != 0) {
			close(fds[0]);
			pid_ = -1;
			return false;
		}
		std::string line;
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
		while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
			pollfd p{fds[0], POLLIN, 0};
			if (poll(&p, 1, 100) <= 0)
				continue;
			char buf[256];
			ssize_t n = read(fds[0], buf, sizeof(buf));
			if (n <= 0)
				break;
			line.append(buf, static_cast<size_t>(n));
		}
		close(fds[0]);
		size_t colon = line.rfind(':');
		if (line.find("listening on http://") == std::string::npos || colon == std::string::npos) {
			Stop();
			return false;
		}
		port_ = std::atoi(line.c_str() + colon + 1);
		return port_ > 0;
	}

	// SIGTERM, then wait (SIGKILL after 10 s). Returns the exit code, or -1 if killed or not running.
	int Stop() {
		if (pid_ <= 0)
			return -1;
		kill(pid_, SIGTERM);
		int status = 0;
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (waitpid(pid_, &status, WNOHANG) == 0) {
			if (std::chrono::steady_clock::now() > deadline) {
				kill(pid_, SIGKILL);
				waitpid(pid_, &status, 0);
				break;
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
		}
		pid_ = -1;
		return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}

	int port() const { return port_; }
	pid_t pid() const { return pid_; }
	std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
	pid_t pid_ = -1;
	int port_ = 0;
};

// A fresh temporary directory, removed with its contents at the end.
class TempDir {
public:
	TempDir() {
		char tmpl[] = "/tmp/s5v_node_XXXXXX";
		const char *d = mkdtemp(tmpl);
		path_ = d ? d : "";
	}
	~TempDir() {
		std::error_code ec;
		if (!path_.empty())
			std::filesystem::remove_all(path_, ec);
	}
	const std::string &path() const { return path_; }

private:
	std::string path_;
};

} // namespace s5v::test
