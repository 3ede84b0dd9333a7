// Threads that run ioctls for the event-loop transports, so that a client
// whose memory is slow to reach (or made slow on purpose) holds up one
// thread, never the loop or another client.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ioasid::frontends {

class WorkerPool {
public:
    // Starts `initial` threads and adds one whenever work waits with every
    // thread busy, up to `max`.
    WorkerPool(std::size_t initial, std::size_t max);
    ~WorkerPool(); // runs what is queued, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void submit(std::function<void()> job);

private:
    void work();

    std::mutex lock_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    std::size_t max_;
    bool stopping_ = false;
};

} // namespace ioasid::frontends
