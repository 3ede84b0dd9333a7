#include "machine.h"

#include <stdexcept>

#include "hwmodels/families.h"

namespace ioasid {
namespace {

// A unit's topology keys as a family reads them.
class TopologyParams final : public hw::UnitParams {
public:
    explicit TopologyParams(const config::Params& params) : params_(params) {}

    std::optional<bool> boolean(std::string_view key) override { return params_.boolean(key); }
    std::optional<std::int64_t> integer(std::string_view key) override { return params_.integer(key); }
    std::optional<std::string> string(std::string_view key) override { return params_.string(key); }
    std::string where(std::string_view key) const override { return params_.where(key); }

private:
    const config::Params& params_;
};

} // namespace

void build_machine(const config::Topology& topology, memory::PhysSpace& phys, core::Hardware& hardware)
{
    for (const config::UnitSpec& spec : topology.units) {
        const hw::Family* family = hw::find_family(spec.family);
        if (!family)
            throw std::runtime_error(spec.params.where() + ": family \"" + spec.family +
                                     "\" is not emulated yet");
        // The family marks what it reads on a copy of its own, so the
        // shared default topology stays untouched.
        config::Params params = spec.params;
        TopologyParams adapter(params);
        std::unique_ptr<hw::Unit> unit;
        try {
            unit = family->create(spec.name, adapter, phys);
        } catch (const config::ParamError& e) {
            throw std::runtime_error(e.what());
        } catch (const hw::UnitParamError& e) {
            throw std::runtime_error(e.what());
        }
        if (auto unknown = params.unconsumed(); !unknown.empty())
            throw std::runtime_error(params.where(unknown.front()) + ": unknown key \"" + unknown.front() +
                                     "\" for a " + spec.family + " unit");
        hardware.add_unit(std::move(unit));
    }
    for (const config::DeviceSpec& spec : topology.devices)
        hardware.add_device(spec.unit,
                            hw::EndpointConfig{spec.name, spec.rid, spec.pasid_bits, spec.dirty_tracking},
                            spec.group, spec.pasid_only, spec.vfio);
}

} // namespace ioasid
