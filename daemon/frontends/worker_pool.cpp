#include "worker_pool.h"

namespace ioasid::frontends {

WorkerPool::WorkerPool(std::size_t initial, std::size_t max) : max_(max)
{
    std::lock_guard guard(lock_);
    for (std::size_t i = 0; i < initial; ++i)
        threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool()
{
    {
        std::lock_guard guard(lock_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_)
        thread.join();
}

void WorkerPool::submit(std::function<void()> job)
{
    {
        std::lock_guard guard(lock_);
        jobs_.push_back(std::move(job));
        if (idle_ < jobs_.size() && threads_.size() < max_)
            threads_.emplace_back([this] { work(); });
    }
    wake_.notify_one();
}

void WorkerPool::work()
{
    std::unique_lock guard(lock_);
    for (;;) {
        ++idle_;
        wake_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty())
            return; // stopping, and nothing left to run
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        guard.unlock();
        job();
        guard.lock();
    }
}

} // namespace ioasid::frontends
